"""One training run, as `trainlab-train` runs it (the command line itself is in train.py).

Reads top to bottom as the run does. `run` is the whole process's view: set up the process, record
the run's start, train, record how it ended, report. `train` opens the experiment around the researcher's
entry (trainlab.train.train: data, model and Trainer from config, fit, test): seed -> the checkpoint it starts
from, checked -> the checks that need no object built -> loggers and callbacks -> the entry -> hyperparameters
with the final metrics. Tests and scripts call `train` directly.
"""

import logging
import shlex
import warnings
from pathlib import Path
from typing import Any, NoReturn

import lightning.pytorch as pl
from hydra.errors import InstantiationException
from lightning.pytorch.utilities import rank_zero_only
from omegaconf import DictConfig, OmegaConf

from runkit.building import (
    build_callbacks,
    build_loggers,
    check_model_fits_data,
    check_optimization,
    data_options,
    finish_loggers,
    trainer_options,
)
from runkit.callbacks.optuna_trial import TrialPruned, trial_callbacks
from runkit.checkpoints import LinkBestCheckpoint, RunConfigInCheckpoints, check_named_checkpoints, load_checkpoint
from runkit.config import ConfigError, user_error_message
from runkit.config.instantiate import refused_settings
from runkit.config.validate import locate
from runkit.fit_watch import FitWatch
from runkit.loggers.hparams import log_hyperparameters
from runkit.process.interruption import RunInterrupted, interruptible
from runkit.process.mode import in_multirun
from runkit.process.orphan import job_running, watch_the_sweep
from runkit.process.resources import disk_space_named, memory_error, memory_limit
from runkit.process.setup import set_up_process
from runkit.process.slurm import hand_over_to_submitit, ignore_late_warning
from runkit.runs.commands import mlflow_command, program, resume_command, tensorboard_command
from runkit.runs.ending import recording_how_it_ends
from runkit.runs.folder import discard_unstarted_run_folder
from runkit.runs.info import (
    CONFIG_TREE_FILE,
    config_summary,
    console_config,
    print_config_tree,
    save_config_tree,
    write_run_info,
)
from runkit.runs.job_lock import holding_run_folder
from runkit.runs.names import run_name
from runkit.runs.rank_failure import RecordRankFailure, forget_rank_failures
from runkit.runs.reading import final_metrics
from runkit.runs.resume import StartingPoint, resume_line, starting_point, sweep_job_plan
from runkit.runs.status import error_line, read_status
from runkit.trusted_code import trust_of
from runkit.unreadable_files import naming_unreadable_files

log = logging.getLogger(__name__)


def run(cfg: DictConfig) -> float | TrialPruned | None:
    """A whole run as the command line starts it, its config validated; returns the sweep objective (None if the
    job failed).

    status.yaml always says how the run ended (runs/ending.py), and the exit code agrees: ok (0), failed (a
    one-line error and 2, or a traceback and 1), interrupted by SIGINT, SIGTERM or SIGHUP (130, 143, 129) with the command
    that resumes it. In a multirun a failed job is recorded and returns None, so the sweep goes on (the Optuna
    sweeper marks the trial failed), and a trial stopped by the search's pruner is recorded as pruned and
    returns TrialPruned; a sweep run again into its folder skips finished jobs.
    As a SLURM job (hydra/launcher=slurm), SLURM's warning before the time limit interrupts the run too, and
    submitit then requeues the job, which resumes from its last.ckpt (see process/slurm.py).
    """
    set_up_process(cfg)
    watch_the_sweep()  # a job in a process of the sweep's stops when the sweep's process dies
    with interruptible(), job_running(), holding_run_folder(Path(cfg.paths.output_dir)):
        try:
            result = run_unless_finished(cfg)
        except RunInterrupted as stop:
            stop_interrupted_run(cfg, stop)
    ignore_late_warning()
    return result


def run_unless_finished(cfg: DictConfig) -> float | TrialPruned | None:
    """The run, unless its folder says it finished already: then its recorded result."""
    start = starting_point(cfg)
    if start.finished:
        return finished_result(cfg)
    try:
        with recording_how_it_ends(cfg) as ending, disk_space_named(Path(cfg.paths.output_dir)):
            start_run(cfg)
            ending.metrics = train(cfg, start)
    except TrialPruned as pruned:
        log.info("Trial %s by the search's pruner.", pruned)
        return pruned
    except Exception as error:
        if not in_multirun():
            raise
        report_failed_job(error)
        return None
    report_run(cfg, ending.metrics)
    return ending.objective


def refuse_sweep_job(cfg: DictConfig, error: ConfigError) -> float | None:
    """A sweep's job whose config the command line refused: recorded as failed, and the sweep goes on.

    Run again into its sweep's folder, a job that had finished is skipped as always, and the record of a failed
    attempt is kept aside (runs.resume.sweep_job_plan) before this one is written.
    """
    if sweep_job_plan(cfg) == "skip":
        return finished_result(cfg)
    try:
        with recording_how_it_ends(cfg):
            raise error
    except ConfigError:
        report_failed_job(error)
    return None


def report_failed_job(error: Exception) -> None:
    """A sweep's failed job says why in one line, as a single run does; an unexpected error's traceback goes to
    the job's log file only, where it does not bury the other jobs' progress."""
    log.error("This job failed, the sweep goes on: %s", error_line(error))
    if user_error_message(error) is None:
        cause = (type(error), error, error.__traceback__)
        traceback = log.makeRecord(log.name, logging.ERROR, __file__, 0, "Traceback of that failure:", (), cause)
        for handler in logging.getLogger().handlers:
            if isinstance(handler, logging.FileHandler):
                handler.handle(traceback)


def finished_result(cfg: DictConfig) -> float | None:
    """What a run that had finished returns: a sweep job its recorded objective, a single run its final metrics."""
    if in_multirun():
        log.info("This job finished in an earlier run of the sweep (status ok); skipped.")
        return read_status(Path(cfg.paths.output_dir)).get("value")
    log.info("This run had already finished; nothing to train. Its final metrics are the ones it logged.")
    metrics = final_metrics(Path(cfg.paths.output_dir))
    report_run(cfg, metrics)
    return metrics.get(cfg.get("optimized_metric"))


def stop_interrupted_run(cfg: DictConfig, stop: RunInterrupted) -> NoReturn:
    """End the process of an interrupted run (its status.yaml holds the command that resumes it).

    SLURM's time-limit warning goes on to submitit, which requeues the job (and ends the process itself);
    a job out of requeues stops here like any interrupted run.
    """
    if not stop.warned_by_slurm and discard_unstarted_run_folder():
        log.warning("Stopped by %s before training began; no run folder was kept.", stop.signal_name)
        raise SystemExit(stop.exit_code) from None
    resume = resume_command(cfg)
    if stop.warned_by_slurm:
        log.warning(
            "Stopped by SLURM's warning (%s: the time limit, or preemption); submitit requeues the job to resume.",
            stop.signal_name,
        )
        declined = hand_over_to_submitit(stop.handler_before, stop.signum)
        if declined:
            log.warning("The job was not requeued (%s); resume with: %s", declined, resume)
    else:
        log.warning("Stopped by %s; resume with: %s", stop.signal_name, resume)
    raise SystemExit(stop.exit_code) from None


@rank_zero_only
def start_run(cfg: DictConfig) -> None:
    """What happens once per run before training: run metadata, warnings filter, the config saved."""
    extras = cfg.get("extras") or {}
    console_config(extras.get("print_config"))  # a mistyped setting refused before anything is written
    output_dir = Path(cfg.paths.output_dir)
    forget_rank_failures(output_dir)
    write_run_info(cfg, output_dir)
    if extras.get("ignore_warnings"):
        warnings.filterwarnings("ignore")
    save_config_tree(cfg, output_dir / CONFIG_TREE_FILE)


def show_config(cfg: DictConfig) -> None:
    """The config on the console, once the checks before building have passed: a mistake stays one line."""
    shown = console_config((cfg.get("extras") or {}).get("print_config"))
    if in_multirun():  # Hydra prints what sets each job apart: its overrides
        return
    if shown == "tree":
        print_config_tree(cfg)
    elif shown == "summary":
        for line in config_summary():
            log.info(line)


def train(cfg: DictConfig, start: StartingPoint | None = None) -> dict[str, float]:
    """Run one experiment as configured (a validated config) and return its final metrics (train, val and test).

    The researcher's entry (`entry` in configs/train.yaml: trainlab.train.train) builds the data, the model
    and the Trainer, fits and tests; around it, this reads the checkpoint it starts from, checks what can be
    checked before anything is built, and hands it the loggers and callbacks. `start`: what the run starts
    from, when the caller has decided it (runs.resume.starting_point).
    """
    ckpt_path = (start or starting_point(cfg)).checkpoint
    if cfg.get("seed") is not None:
        pl.seed_everything(cfg.seed, workers=True, verbose=False)
    # A checkpoint is read first: one that names code outside the run's trust is refused before anything is built.
    trust = trust_of(cfg)
    resumed = load_checkpoint(ckpt_path, trust) if ckpt_path is not None else None
    check_named_checkpoints(cfg, trust)
    check_model_fits_data(cfg.model, cfg.data)
    check_optimization(cfg)
    show_config(cfg)
    resume_step = int(resumed["global_step"]) if resumed is not None and cfg.get("train", True) else None
    loggers = build_loggers(cfg.get("logger"), run_name(cfg.paths.output_dir), resume_step)
    watch = FitWatch(resumed, ckpt_path)
    callbacks = build_callbacks(cfg.get("callbacks"), loggers) + trial_callbacks(cfg)
    callbacks += [RunConfigInCheckpoints(OmegaConf.to_container(cfg, resolve=True)), LinkBestCheckpoint(), watch]

    def fixes() -> str:  # asked only when memory runs out: which settings help depends on how far the run got
        return smaller_data(cfg) if watch.phase == "data" else smaller_steps(cfg)

    callbacks.append(RecordRankFailure(cfg.paths.output_dir, lambda error: memory_error(error, watch.doing, fixes)))
    if cfg.get("train", True):
        log.info("Training; run folder: %s", cfg.paths.output_dir)  # not before: a run stopped earlier keeps no folder
        if resumed is not None:
            log.info(resume_line(resumed, cfg.trainer.get("max_epochs")))
    with memory_limit(watch.doing, fixes):
        trainer = run_entry(cfg, data_options(cfg), trainer_options(cfg.trainer, callbacks, loggers))
    metrics = {**logged_before(cfg, resumed), **watch.fit_metrics, **to_floats(trainer.callback_metrics)}
    log_hyperparameters(loggers, cfg, trainer.lightning_module, metrics)
    finish_loggers(loggers)
    return metrics


def logged_before(cfg: DictConfig, resumed: dict[str, Any] | None) -> dict[str, float]:
    """A resumed run's train and val values as it logged them before: a run stopped while testing has no epoch
    left to fit, so this process logs only its test metrics, and the objective (val/loss) is among these."""
    if resumed is None:
        return {}
    earlier = final_metrics(Path(cfg.paths.output_dir))
    return {name: value for name, value in earlier.items() if not name.startswith("test/")}


def run_entry(cfg: DictConfig, data: dict[str, Any], trainer: dict[str, Any]) -> pl.Trainer:
    """The researcher's entry, with a data file that cannot be read and a class that refuses its settings each
    told in one line."""
    entry = locate(str(cfg.entry))
    try:
        with naming_unreadable_files():  # before the settings' check: a data module's __init__ may read its files
            return entry(cfg, data, trainer)
    except InstantiationException as error:
        raise refused_settings("", cfg, error) from error


def smaller_data(cfg: DictConfig) -> str:
    """The settings that make a run's data smaller, for its out-of-memory message."""
    sizes = [f"data.{key}={cfg.data[key]}" for key in ("num_train", "train_size") if cfg.data.get(key) is not None]
    sizes = sizes or ["data.train_size=<N>"] * ("train_size" in cfg.data)
    return f"use fewer samples ({' or '.join(sizes)})" if sizes else "use a smaller dataset"


def smaller_steps(cfg: DictConfig) -> str:
    """The settings that make each training step need less memory, for its out-of-memory message."""
    precision = cfg.trainer.get("precision")
    return (
        f"lower data.batch_size (now {cfg.data.get('batch_size')}), compute in bf16 with trainer=bf16 (precision now "
        f"{precision}), or narrow the model (model.net's widths)"
    )


def to_floats(metrics: dict) -> dict[str, float]:
    return {name: float(value) for name, value in metrics.items()}


def absolute_store(uri: str) -> str:
    """An MLflow store URI that works from any folder: a relative SQLite path made absolute."""
    if not uri.startswith("sqlite:///") or uri.startswith("sqlite:////"):
        return uri
    return f"sqlite:///{Path(uri.removeprefix('sqlite:///')).resolve()}"


@rank_zero_only
def report_run(cfg: DictConfig, metrics: dict[str, float]) -> None:
    """Tell the user what came out and where to look, with a TensorBoard command that works as printed."""
    shown = ", ".join(f"{k}={v:.4f}" for k, v in sorted(metrics.items()) if k.startswith(("val/", "test/")))
    log.info("Final metrics: %s", shown)
    log.info("Run folder: %s", cfg.paths.output_dir)
    loggers = cfg.get("logger") or {}
    # A sweep's TensorBoard command comes once, for the whole sweep, when it ends (runs.folder.ReportSweep).
    if loggers.get("tensorboard") and not in_multirun():
        log.info("View the curves: %s", tensorboard_command(cfg.paths.output_dir))
    if loggers.get("mlflow"):
        log.info("View it in MLflow: %s", mlflow_command(absolute_store(str(loggers.mlflow.tracking_uri))))
    for offline_run in sorted(Path(cfg.paths.output_dir).glob("wandb/offline-run-*")):
        log.info("Upload it to W&B: %s sync %s", program("wandb"), shlex.quote(str(offline_run)))
