"""A trial of the Optuna search reports its objective after every validation epoch and stops when the pruner says so.

Active only in a job of `hparams_search=optuna` with a pruner (`hydra/sweeper/pruner=median`, ...). The
job is trial number `hydra.job.num` of the sweeper's study (the sweeper launches each trial with its
number as the job's index) and reaches the study through `hydra.sweeper.storage`. A pruned run ends
its fit normally (checkpoints written), is not tested, records `pruned` in its status.yaml and
returns TrialPruned to the sweeper, which tells the study the trial was pruned.
"""

import logging
import math
import os

import lightning.pytorch as pl
from hydra.core.hydra_config import HydraConfig
from lightning.pytorch.callbacks import Callback
from omegaconf import DictConfig

from runkit.config import ConfigError
from runkit.process.mode import in_multirun, process_rank
from runkit.sweep_workers import WORKER_TRIAL_VARIABLE, worker_name

log = logging.getLogger(__name__)

SWEEPER = "hydra_plugins.trainlab_optuna_sweeper.optuna_sweeper.OptunaSweeper"
# The trial number, for DDP's other ranks: they rerun the job outside the multirun, without its job number,
# and must still join rank 0's decision to stop.
TRIAL_VARIABLE = "TRAINLAB_OPTUNA_TRIAL"


class TrialPruned(Exception):
    """The pruner stopped this trial after `epoch`, when its objective `metric` was `value`.

    Raised after the fit, and returned by the job to the sweeper (it pickles, for launchers in other processes).
    """

    def __init__(self, epoch: int, metric: str, value: float) -> None:
        super().__init__(epoch, metric, value)
        self.epoch, self.metric, self.value = epoch, metric, value

    def __str__(self) -> str:
        return f"pruned after epoch {self.epoch + 1}: {self.metric}={self.value:.4g}"


class ReportToTrial(Callback):
    def __init__(self, sweeper: DictConfig, number: int, metric: str) -> None:
        self.sweeper, self.number, self.metric = sweeper, number, metric
        self.trial = None
        self.pruned: TrialPruned | None = None

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        prune = False
        if trainer.is_global_zero:  # one process talks to the study; the others follow its decision
            prune = self.report(trainer)
        if trainer.world_size > 1:
            prune = trainer.strategy.broadcast(prune, src=0)
        trainer.should_stop = trainer.should_stop or prune

    def report(self, trainer: pl.Trainer) -> bool:
        if self.metric not in trainer.callback_metrics:
            logged = ", ".join(sorted(trainer.callback_metrics)) or "none"
            raise ConfigError(
                f"optimized_metric={self.metric} is not logged after a validation epoch (logged: {logged}), "
                f"so hydra.sweeper.pruner cannot judge the trial; use a val/ metric or hydra/sweeper/pruner=none."
            )
        value = float(trainer.callback_metrics[self.metric])
        if not math.isfinite(value):
            return False  # the run ends failed on its own (see objective_problem); nothing to report
        if self.trial is None:
            from runkit.search import open_trial  # imports Optuna: only trials with a pruner get here

            self.trial = open_trial(self.sweeper, self.number)
        epoch = trainer.current_epoch
        self.trial.report(value, step=epoch)
        if self.trial.should_prune():
            self.pruned = TrialPruned(epoch, self.metric, value)
            log.info("Trial %d: %s; stopping.", self.number, self.pruned)
            return True
        return False


def trial_callbacks(cfg: DictConfig) -> list[Callback]:
    """[ReportToTrial] when this job is a trial of trainlab's Optuna search with a pruner; else []."""
    if not HydraConfig.initialized() or cfg.get("optimized_metric") is None:
        return []
    hydra = HydraConfig.get()
    sweeper = hydra.sweeper
    pruner = sweeper.get("pruner") if sweeper.get("_target_") == SWEEPER else None
    if pruner is None or pruner.get("_target_") == "optuna.pruners.NopPruner":
        return []
    if in_multirun():
        # A worker's job may run in the folder of a trial it takes over: the worker names the trial.
        number = int(os.environ.get(WORKER_TRIAL_VARIABLE) if worker_name() else hydra.job.num)
        os.environ[TRIAL_VARIABLE] = str(number)  # inherited by the ranks Lightning starts
    elif process_rank() > 0 and TRIAL_VARIABLE in os.environ:
        number = int(os.environ[TRIAL_VARIABLE])
    else:
        return []
    return [ReportToTrial(sweeper, number, str(cfg.optimized_metric))]


def raise_if_pruned(trainer: pl.Trainer) -> None:
    """After the fit: a pruned trial ends here, untested."""
    for callback in trainer.callbacks:
        if isinstance(callback, ReportToTrial) and callback.pruned is not None:
            raise callback.pruned
