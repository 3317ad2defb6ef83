"""Rebuilds a trained model from its checkpoint alone: the run config inside it says how to build it."""

from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from trainlab.data.tensor_datamodule import TensorDataModule
from trainlab.models.base import TrainlabModule
from trainlab.utils.checkpoint import CONFIG_KEY, check_architecture, load_checkpoint
from trainlab.utils.instantiate import build_model


def load_run(ckpt_path: str | Path, model_cfg: DictConfig | None = None) -> tuple[dict[str, Any], DictConfig]:
    """The checkpoint (read safely) and the composed config of the run that wrote it.

    ``model_cfg`` (from `model=...` on the command line) replaces the run's model, to read the
    weights as another model config; its shapes must still match the checkpoint's.
    """
    checkpoint = load_checkpoint(ckpt_path)
    run_cfg = OmegaConf.create(checkpoint[CONFIG_KEY])
    if model_cfg:
        run_cfg.model = OmegaConf.to_container(model_cfg, resolve=False)
    return checkpoint, run_cfg


def restore_model(
    checkpoint: dict[str, Any], run_cfg: DictConfig, datamodule: TensorDataModule, ckpt_path: str | Path
) -> TrainlabModule:
    """The run's LightningModule with the checkpoint's weights, checked against the data it will see."""
    model = build_model(run_cfg, datamodule)
    check_architecture(checkpoint, model, ckpt_path)
    model.load_state_dict(checkpoint["state_dict"])
    return model
