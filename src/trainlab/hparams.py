"""Hyperparameters for TensorBoard's HPARAMS tab, paired with the run's real final metrics."""

from collections.abc import Mapping
from typing import Any

import torch
from lightning.pytorch.loggers import Logger, TensorBoardLogger
from lightning.pytorch.utilities import rank_zero_only
from omegaconf import DictConfig, OmegaConf
from torch.utils.tensorboard.summary import hparams
from torch.utils.tensorboard.writer import FileWriter

# Sections of the config that say where and how a run is stored, not what it computes.
NOT_HYPERPARAMETERS = ("paths", "extras", "hydra", "logger")


def flatten(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """{'optimizer': {'lr': 0.1}} -> {'optimizer.lr': 0.1}; lists and None become strings, as TensorBoard needs."""
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten(value, f"{name}."))
        elif isinstance(value, bool | int | float | str):
            flat[name] = value
        else:
            flat[name] = str(value)
    return flat


def collect_hyperparameters(cfg: DictConfig, model: torch.nn.Module) -> dict[str, Any]:
    """The composed config as flat `group.key` entries, plus the model's size."""
    tree = OmegaConf.to_container(cfg, resolve=True)
    params = flatten({k: v for k, v in tree.items() if k not in NOT_HYPERPARAMETERS})
    params["model/params_total"] = sum(p.numel() for p in model.parameters())
    params["model/params_trainable"] = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return params


@rank_zero_only  # other DDP ranks hold a dummy TensorBoard writer
def log_hyperparameters(loggers: list[Logger], params: dict[str, Any], metrics: dict[str, float]) -> None:
    """Record hyperparameters with the final metrics, so runs can be compared by real results."""
    for logger in loggers:
        if isinstance(logger, TensorBoardLogger):
            write_tensorboard_hparams(logger, params, metrics)
        else:
            logger.log_hyperparams(params)


def write_tensorboard_hparams(logger: TensorBoardLogger, params: dict[str, Any], metrics: dict[str, float]) -> None:
    """Write the HPARAMS summary into the run's event files.

    TensorBoard reads each metric's value from the scalar of the same tag in the same run, which
    the training already logged; Lightning's own `log_hyperparams(params, metrics)` would add a
    second point at step 0 to every one of those curves, so the summary is written directly, into
    an event file of its own in the run's TensorBoard folder (Lightning has closed its writer by now).
    """
    writer = FileWriter(logger.log_dir)
    for summary in hparams(params, metrics):
        writer.add_summary(summary)
    writer.close()
