"""Rebuilds a trained model from its checkpoint alone: the run config inside it says how to build it."""

from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from trainlab.data.tensor_datamodule import TensorDataModule
from trainlab.models.base import TrainlabModule
from trainlab.utils.checkpoint import CONFIG_KEY, load_checkpoint
from trainlab.utils.instantiate import build_model


def load_run(ckpt_path: str | Path) -> tuple[dict[str, Any], DictConfig]:
    """The checkpoint (read safely) and the composed config of the run that wrote it."""
    checkpoint = load_checkpoint(ckpt_path)
    return checkpoint, OmegaConf.create(checkpoint[CONFIG_KEY])


def restore_model(checkpoint: dict[str, Any], run_cfg: DictConfig, datamodule: TensorDataModule) -> TrainlabModule:
    """The run's LightningModule with the checkpoint's weights, checked against the data it will see."""
    model = build_model(run_cfg, datamodule)
    model.load_state_dict(checkpoint["state_dict"])
    return model
