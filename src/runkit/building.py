"""Builds a run's objects from composed config: datamodule, model, callbacks, loggers, trainer."""

import functools
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.utils import get_class
from lightning.pytorch.callbacks import Callback, LearningRateMonitor, ProgressBar
from lightning.pytorch.loggers import Logger, MLFlowLogger, TensorBoardLogger, WandbLogger
from omegaconf import DictConfig

from runkit.checkpoints import AtomicCheckpointIO
from runkit.config import ConfigError
from runkit.config.instantiate import build, refused_settings
from runkit.config.validate import constructor_parameters
from runkit.process.hardware import check_and_say_hardware
from runkit.process.locks import exclusive_lock
from runkit.process.mode import in_multirun
from runkit.runs.folder import SHARED_DATA_DIR
from runkit.runs.resume import continue_event_files


def choice(group: str, cfg: DictConfig) -> str:
    """The option chosen for a config group (e.g. 'cnn' for model), or the target's name outside Hydra."""
    if HydraConfig.initialized():
        chosen = HydraConfig.get().runtime.choices.get(group)
        if chosen:
            return chosen
    return str(cfg.get("_target_", group)).rsplit(".", 1)[-1]


def build_datamodule(data_cfg: DictConfig, **options: Any) -> pl.LightningDataModule:
    """The datamodule, with the `data_options` it takes; no data is loaded until Lightning calls its setup."""
    return build("data", data_cfg, **options)


def data_options(cfg: DictConfig) -> dict[str, Any]:
    """What trainlab offers a datamodule beyond its config, for one that takes it (the template's own do; any
    LightningDataModule works without): `shared_dir`, where the jobs of a sweep on the same data map one copy
    of it, and `fast_dev_run`, so that a smoke test makes only the batches it takes."""
    offered = {"shared_dir": shared_data_dir(cfg), "fast_dev_run": cfg.trainer.get("fast_dev_run", False)}
    taken, _ = constructor_parameters(str(cfg.data._target_))
    return {name: value for name, value in offered.items() if name in taken}


def shared_data_dir(cfg: DictConfig) -> Path | None:
    """Where a sweep's jobs share their data: the sweep folder's shared_data/, unless extras.share_data is off.
    None outside a multirun."""
    if not in_multirun() or not (cfg.get("extras") or {}).get("share_data", True):
        return None
    return Path(HydraConfig.get().sweep.dir) / SHARED_DATA_DIR


def check_model_fits_data(model_cfg: DictConfig, data_cfg: DictConfig) -> None:
    """Fail early, with the fix, when the chosen model cannot take the chosen data. A nicety: it compares the
    optional `task` of the model's and the datamodule's classes, and the net's `input_shape` with the data's,
    and says nothing where either side does not tell."""
    model_task = getattr(get_class(model_cfg._target_), "task", None)
    data_task = getattr(get_class(data_cfg._target_), "task", None)
    model_name, data_name = choice("model", model_cfg), choice("data", data_cfg)
    if model_task and data_task and model_task != data_task:
        raise ConfigError(
            f"model={model_name} is a {model_task} model but data={data_name} is a {data_task} "
            f"dataset; choose a {data_task} model."
        )
    net = model_cfg.get("net")
    net_shape = net.get("input_shape") if isinstance(net, DictConfig) else None
    data_shape = data_cfg.get("input_shape")
    if net_shape is not None and data_shape is not None and tuple(net_shape) != tuple(data_shape):
        raise ConfigError(
            f"model={model_name} expects input_shape={list(net_shape)} but data={data_name} gives "
            f"{list(data_shape)}; leave model.net.input_shape as ${{data.input_shape}}."
        )


def check_optimization(cfg: DictConfig) -> None:
    """The optimizer group, which the template's models take (configs/_model.yaml), built once before the run."""
    if cfg.get("optimizer"):
        scheduler = build("scheduler", cfg.scheduler) if cfg.get("scheduler") else None
        try_optimization(build("optimizer", cfg.optimizer), scheduler, cfg)


def build_model(cfg: DictConfig) -> pl.LightningModule:
    """The LightningModule, as its config says, after the checks a run makes first."""
    check_model_fits_data(cfg.model, cfg.data)
    check_optimization(cfg)
    return build("model", cfg.model)


def try_optimization(optimizer_factory: Any, scheduler: dict[str, Any] | None, cfg: DictConfig) -> None:
    """Build the optimizer and its schedule once on a stand-in parameter, so that their own checks
    (momentum, betas, step sizes, ...) fail here as one line rather than inside trainer.fit."""
    if not callable(optimizer_factory):
        return
    try:
        optimizer = optimizer_factory(params=[torch.nn.Parameter(torch.zeros(1))])
    except Exception as error:
        raise refused_settings("optimizer", cfg.optimizer, error) from None
    factory = (scheduler or {}).get("scheduler")
    if not callable(factory):
        return
    if isinstance(factory, functools.partial) and factory.keywords.get("total_steps", 0) is None:
        factory = functools.partial(factory, total_steps=1)  # the run's length is filled in when it starts
    try:
        factory(optimizer=optimizer)
    except Exception as error:
        raise refused_settings("scheduler.scheduler", cfg.scheduler.scheduler, error) from None


def build_loggers(
    logger_cfg: DictConfig | None, run_name: str | None = None, resume_step: int | None = None
) -> list[Logger]:
    """The run's loggers, each naming the run `run_name` (when given) unless its config names it;
    `resume_step` is the global step of the checkpoint a resumed run continues from.

    A resumed TensorBoard run gets `purge_step`, so TensorBoard hides points that an interrupted
    run wrote after its checkpoint, and its event file is named to sort after the earlier ones.
    """
    loggers = []
    for entry in (logger_cfg or {}).values():
        if not entry:
            continue
        logger_class = get_class(entry._target_)
        options = run_name_option(logger_class, entry, run_name) if run_name else {}
        if resume_step is not None and issubclass(logger_class, TensorBoardLogger):
            logger = build("logger", entry, purge_step=resume_step or None, **options)
            continue_event_files(logger.log_dir)
        elif issubclass(logger_class, MLFlowLogger):
            logger = build_mlflow_logger(entry, options)
        else:
            logger = build("logger", entry, **options)
        loggers.append(logger)
    return loggers


def build_mlflow_logger(entry: DictConfig, options: dict[str, str]) -> MLFlowLogger:
    """An MLflow logger with its experiment and run created, one process at a time for a local SQLite store.

    MLflow creates a new store's tables, and Lightning the experiment, on first use; the jobs of a
    parallel sweep starting together would each try and all but one fail ("table already exists").
    """
    uri = str(entry.get("tracking_uri") or "")
    lock = Path(uri.removeprefix("sqlite:///") + ".lock") if uri.startswith("sqlite:///") else None
    with exclusive_lock(lock):
        logger = build("logger", entry, **options)
        _ = logger.experiment  # creates the experiment and the run while the lock is held
    return logger


def run_name_option(logger_class: type, entry: DictConfig, run_name: str) -> dict[str, str]:
    """The argument that names the run, for a logger whose config leaves it unset. TensorBoard names a run
    by its folder, the run folder, which already says what sets the run apart."""
    if issubclass(logger_class, MLFlowLogger) and entry.get("run_name") is None:
        return {"run_name": run_name}
    if issubclass(logger_class, WandbLogger) and entry.get("name") is None:
        return {"name": run_name}
    return {}


def finish_loggers(loggers: list[Logger]) -> None:
    """End the loggers' runs once everything is logged. W&B keeps a run open until `finish()`; in a sweep's
    process the next job would otherwise log into it."""
    for logger in loggers:
        if isinstance(logger, WandbLogger):
            logger.experiment.finish()


def build_callbacks(callbacks_cfg: DictConfig | None, loggers: list[Logger]) -> list[Callback]:
    # An experiment may tune a callback (say early_stopping.patience) that `callbacks=none` removed:
    # such a leftover has no _target_ and is skipped.
    entries = (callbacks_cfg or {}).items()
    callbacks = [build(f"callbacks.{name}", entry) for name, entry in entries if entry and "_target_" in entry]
    if not loggers:
        # LearningRateMonitor refuses to run without a logger; with none it has nothing to do.
        callbacks = [c for c in callbacks if not isinstance(c, LearningRateMonitor)]
    return callbacks


def trainer_options(trainer_cfg: DictConfig, callbacks: list[Callback], loggers: list[Logger]) -> dict[str, Any]:
    """What runkit adds to the Trainer's config: the callbacks, the loggers, and a checkpoint writer that writes
    whole files or none, unless the config names plugins of its own."""
    plugins = {} if trainer_cfg.get("plugins") else {"plugins": [AtomicCheckpointIO()]}
    # callbacks.progress_bar=null means no progress display: Lightning would otherwise add its own tqdm bar.
    no_display = not any(isinstance(callback, ProgressBar) for callback in callbacks)
    quiet = {"enable_progress_bar": False} if no_display and "enable_progress_bar" not in trainer_cfg else {}
    return {"callbacks": callbacks, "logger": loggers or False, **plugins, **quiet}


def build_trainer(trainer_cfg: DictConfig, callbacks: list[Callback], loggers: list[Logger]) -> pl.Trainer:
    """The Trainer with runkit's options, refused in one line on hardware it does not fit."""
    trainer = build("trainer", trainer_cfg, **trainer_options(trainer_cfg, callbacks, loggers))
    check_and_say_hardware(trainer)
    return trainer
