"""One training run, as `trainlab-train` runs it (the command line itself is in train.py).

Reads top to bottom as the run does. `run` is the whole process's view: set up the process, record
the run's start, train, record how it ended, report. `train` is the experiment itself: validate ->
seed -> datamodule -> model -> loggers and callbacks -> Trainer -> fit -> test the best checkpoint ->
log hyperparameters with the final metrics. Tests and scripts call `train` directly.
"""

import logging
import warnings
from pathlib import Path

import lightning.pytorch as pl
from lightning.pytorch.utilities import rank_zero_only
from omegaconf import DictConfig, OmegaConf

from trainlab.building import build_callbacks, build_datamodule, build_loggers, build_model, build_trainer
from trainlab.checkpoints import check_architecture, load_checkpoint
from trainlab.config import validate_config
from trainlab.hparams import collect_hyperparameters, log_hyperparameters
from trainlab.process import in_multirun, set_up_process
from trainlab.run_folder import (
    FAILED,
    OK,
    RUNNING,
    error_line,
    objective_problem,
    print_config_tree,
    resolve_checkpoint,
    write_run_info,
    write_status,
)

log = logging.getLogger(__name__)


def run(cfg: DictConfig) -> float | None:
    """A whole run as the command line starts it; returns the sweep objective (None if the job failed).

    In a multirun a failed job is recorded and returns None, so the sweep goes on (Hydra's basic
    sweeper would re-raise once the batch is done, and the Optuna sweeper marks the trial failed).
    A single run raises, so its exit code says it failed.
    """
    set_up_process(cfg)
    start_run(cfg)
    try:
        metrics = train(cfg)
    except Exception as error:
        write_status(cfg.paths.output_dir, FAILED, error=error_line(error))  # the traceback goes to the log
        if not in_multirun():
            raise
        log.error("This job failed, the sweep goes on: %s", error_line(error), exc_info=True)
        return None
    problem = objective_problem(cfg, metrics)
    if problem is not None:
        write_status(cfg.paths.output_dir, FAILED, error=problem)
        log.error("This run failed: %s", problem)
        return None
    objective = metrics.get(cfg.get("optimized_metric"))
    write_status(cfg.paths.output_dir, OK, optimized_metric=cfg.get("optimized_metric"), value=objective)
    report_run(cfg, metrics)
    return objective


@rank_zero_only
def start_run(cfg: DictConfig) -> None:
    """What happens once per run before training: status, run metadata, warnings filter, config print-out."""
    output_dir = Path(cfg.paths.output_dir)
    write_status(output_dir, RUNNING)
    write_run_info(cfg, output_dir)
    extras = cfg.get("extras") or {}
    if extras.get("ignore_warnings"):
        warnings.filterwarnings("ignore")
    if extras.get("print_config"):
        print_config_tree(cfg, save_to=output_dir / "config_tree.log")


def train(cfg: DictConfig) -> dict[str, float]:
    """Run one experiment as configured and return its final metrics (train, val and test)."""
    validate_config(cfg)
    ckpt_path = resolve_checkpoint(cfg)
    if cfg.get("seed") is not None:
        pl.seed_everything(cfg.seed, workers=True, verbose=False)
    datamodule = build_datamodule(cfg.data)
    model = build_model(cfg, datamodule)
    resume_step = check_resumed_checkpoint(cfg, ckpt_path, model)
    model.run_config = OmegaConf.to_container(cfg, resolve=True)
    loggers = build_loggers(cfg.get("logger"), resume_step)
    callbacks = build_callbacks(cfg.get("callbacks"), loggers)
    trainer = build_trainer(cfg.trainer, callbacks, loggers)

    if cfg.get("train", True):
        trainer.fit(model, datamodule=datamodule, ckpt_path=ckpt_path, weights_only=True)
    metrics = to_floats(trainer.callback_metrics)
    if cfg.get("test", True):
        test(trainer, model, datamodule, cfg)
        metrics.update(to_floats(trainer.callback_metrics))

    log_hyperparameters(loggers, collect_hyperparameters(cfg, model), metrics)
    return metrics


def check_resumed_checkpoint(cfg: DictConfig, ckpt_path: str | None, model: pl.LightningModule) -> int | None:
    """Refuse a checkpoint of another architecture; return the global step a resumed fit continues from."""
    if ckpt_path is None:
        return None
    checkpoint = load_checkpoint(ckpt_path)
    check_architecture(checkpoint, model, ckpt_path)
    return int(checkpoint.get("global_step", 0)) if cfg.get("train", True) else None


def test(trainer: pl.Trainer, model: pl.LightningModule, datamodule: pl.LightningDataModule, cfg: DictConfig) -> None:
    """Test the best checkpoint of this fit; without checkpoints, the weights the model has now."""
    if not cfg.get("train", True):
        ckpt_path = cfg.get("ckpt_path")
    else:
        callback = trainer.checkpoint_callback
        ckpt_path = callback.best_model_path if callback is not None else ""
        if not ckpt_path:
            log.warning("No best checkpoint was saved (checkpointing is off); testing the last weights.")
            ckpt_path = None
    trainer.test(model, datamodule=datamodule, ckpt_path=ckpt_path)


def to_floats(metrics: dict) -> dict[str, float]:
    return {name: float(value) for name, value in metrics.items()}


@rank_zero_only
def report_run(cfg: DictConfig, metrics: dict[str, float]) -> None:
    """Tell the user what came out and where to look."""
    shown = ", ".join(f"{k}={v:.4f}" for k, v in sorted(metrics.items()) if k.startswith(("val/", "test/")))
    log.info("Final metrics: %s", shown)
    log.info("Run folder: %s", cfg.paths.output_dir)
    if cfg.get("logger") and "tensorboard" in cfg.logger:
        log.info("View the curves: tensorboard --logdir %s", cfg.paths.log_dir)
