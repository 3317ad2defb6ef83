"""Builds the run's objects from composed config: datamodule, model, callbacks, loggers, trainer."""

import logging
import re
import time
from pathlib import Path

import lightning.pytorch as pl
from hydra.core.hydra_config import HydraConfig
from hydra.utils import get_class, instantiate
from lightning.pytorch.callbacks import Callback, LearningRateMonitor
from lightning.pytorch.loggers import Logger, TensorBoardLogger
from omegaconf import DictConfig

from trainlab.data.tensor_datamodule import TensorDataModule
from trainlab.errors import ConfigError
from trainlab.models.base import TrainlabModule

log = logging.getLogger(__name__)

EVENT_FILE_SECOND = re.compile(r"events\.out\.tfevents\.(\d+)\.")


def choice(group: str, cfg: DictConfig) -> str:
    """The option chosen for a config group (e.g. 'cnn' for model), or the target's name outside Hydra."""
    if HydraConfig.initialized():
        chosen = HydraConfig.get().runtime.choices.get(group)
        if chosen:
            return chosen
    return str(cfg.get("_target_", group)).rsplit(".", 1)[-1]


def build_datamodule(data_cfg: DictConfig) -> TensorDataModule:
    """The datamodule; no data is loaded until Lightning calls its setup."""
    return instantiate(data_cfg)


def check_model_fits_data(cfg: DictConfig, datamodule: TensorDataModule) -> None:
    """Fail early, with the fix, when the chosen model cannot take the chosen data."""
    model_class: type[TrainlabModule] = get_class(cfg.model._target_)
    model_name, data_name = choice("model", cfg.model), choice("data", cfg.data)
    if model_class.task != datamodule.task:
        raise ConfigError(
            f"model={model_name} is a {model_class.task} model but data={data_name} is a {datamodule.task} "
            f"dataset; choose a {datamodule.task} model."
        )
    net_shape = cfg.model.net.get("input_shape")
    if net_shape is not None and tuple(net_shape) != tuple(datamodule.input_shape):
        raise ConfigError(
            f"model={model_name} expects input_shape={list(net_shape)} but data={data_name} gives "
            f"{list(datamodule.input_shape)}; leave model.net.input_shape as ${{data.input_shape}}."
        )


def build_model(cfg: DictConfig, datamodule: TensorDataModule) -> TrainlabModule:
    """The LightningModule, with the optimizer, scheduler and regularizer configs as its parts."""
    check_model_fits_data(cfg, datamodule)
    return instantiate(
        cfg.model,
        optimizer=instantiate(cfg.optimizer),
        scheduler=instantiate(cfg.scheduler) if cfg.get("scheduler") else None,
        regularizer=instantiate(cfg.regularizer) if cfg.get("regularizer") else None,
    )


def build_loggers(logger_cfg: DictConfig | None, resume_step: int | None = None) -> list[Logger]:
    """The run's loggers; `resume_step` is the global step of the checkpoint a resumed run continues from."""
    loggers = []
    for entry in (logger_cfg or {}).values():
        if not entry:
            continue
        if resume_step is not None and issubclass(get_class(entry._target_), TensorBoardLogger):
            logger = instantiate(entry, purge_step=resume_step or None)
            continue_event_files(logger.log_dir)
        else:
            logger = instantiate(entry)
        loggers.append(logger)
    return loggers


def continue_event_files(log_dir: str | Path) -> None:
    """Let a resumed run's event file sort after the files already in its TensorBoard folder.

    TensorBoard reads a folder's event files in the order of their names, which begin with the
    second the file was opened, then host, process id and a per-process counter. A file opened in
    the same second as an earlier one can sort before it ("...8" after "...11"), and TensorBoard
    would then show the resumed epochs before the first ones. Waiting for the next second (at most
    one, and only when a run is resumed right after it was written) keeps the names in run order.
    With `purge_step` TensorBoard also hides points an interrupted run wrote after its checkpoint.
    """
    opened = [
        int(match[1])
        for path in Path(log_dir).glob("events.out.tfevents.*")
        if (match := EVENT_FILE_SECOND.match(path.name))
    ]
    if not opened:
        return
    wait = max(opened) + 1 - time.time()
    if 0 < wait <= 1:
        time.sleep(wait)


def build_callbacks(callbacks_cfg: DictConfig | None, loggers: list[Logger]) -> list[Callback]:
    # An experiment may tune a callback (say early_stopping.patience) that `callbacks=none` removed:
    # such a leftover has no _target_ and is skipped.
    callbacks = [instantiate(entry) for entry in (callbacks_cfg or {}).values() if entry and "_target_" in entry]
    if not loggers:
        # LearningRateMonitor refuses to run without a logger; with none it has nothing to do.
        callbacks = [c for c in callbacks if not isinstance(c, LearningRateMonitor)]
    return callbacks


def build_trainer(trainer_cfg: DictConfig, callbacks: list[Callback], loggers: list[Logger]) -> pl.Trainer:
    return instantiate(trainer_cfg, callbacks=callbacks, logger=loggers or False)
