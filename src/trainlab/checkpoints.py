"""The checkpoint format: what trainlab adds to a Lightning checkpoint, and how one is read safely (plain data, never code)."""

import os
import pickle
from pathlib import Path
from typing import Any

import torch
from hydra.utils import get_class
from lightning.pytorch.plugins.io import TorchCheckpointIO

from trainlab.config.errors import ConfigError

# The run's composed config (plain containers), saved in every checkpoint so a model can be rebuilt from it alone.
CONFIG_KEY = "trainlab_config"
ZIP_MAGIC = b"PK\x03\x04"  # torch.save writes a zip archive


def is_torch_archive(path: Path) -> bool:
    with open(path, "rb") as file:
        return file.read(4) == ZIP_MAGIC


def unreadable_message(path: Path) -> str:
    """Why torch could not read the file: a damaged torch file, or something that never was one."""
    if is_torch_archive(path):
        return (
            f"ckpt_path={path} is damaged or incomplete (a torch file cut short or corrupted, e.g. by a run killed "
            "while saving); use another checkpoint from the same folder."
        )
    return f"ckpt_path={path} is not a checkpoint (torch.save did not write it); give the path of a .ckpt file from a run's checkpoints/ folder."


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load a checkpoint written by trainlab-train, or raise a ConfigError that says what is wrong with it."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(
            f"ckpt_path={path} does not exist; give the path of a .ckpt file from a run's checkpoints/ folder."
        )
    try:
        # weights_only refuses any pickled object that could run code when loaded.
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        if not is_torch_archive(path):  # an arbitrary file is read as a legacy pickle and fails here too
            raise ConfigError(unreadable_message(path)) from None
        reason = str(error).splitlines()[0]
        raise ConfigError(
            f"ckpt_path={path} holds objects that are not plain data and was refused ({reason})."
        ) from None
    except Exception:  # a truncated or foreign file can fail anywhere inside the unpickler
        raise ConfigError(unreadable_message(path)) from None
    if not isinstance(checkpoint, dict) or "state_dict" not in checkpoint:
        raise ConfigError(
            f"ckpt_path={path} is not a Lightning checkpoint (it has no state_dict); give a .ckpt file written by trainlab-train."
        )
    if CONFIG_KEY not in checkpoint:
        raise ConfigError(
            f"ckpt_path={path} was not written by trainlab-train (it carries no run config); give a .ckpt file from a trainlab run."
        )
    return checkpoint


def check_architecture(checkpoint: dict[str, Any], model: torch.nn.Module, path: str | Path) -> None:
    """Refuse a checkpoint whose weights do not fit the configured model, naming the first difference."""
    saved = {name: tuple(value.shape) for name, value in checkpoint["state_dict"].items()}
    for name, parameter in model.named_parameters():
        if name not in saved:
            difference = f"it has no {name}"
        elif saved[name] != tuple(parameter.shape):
            difference = f"{name} is {list(saved[name])} there but {list(parameter.shape)} in the model"
        else:
            continue
        raise ConfigError(
            f"ckpt_path={path} holds a different architecture than the configured model ({difference}); "
            "use the model settings the checkpoint was trained with, or a checkpoint of this model."
        )


def load_trained_model(path: str | Path) -> Any:
    """The LightningModule of a trainlab-train checkpoint, rebuilt from the config stored in it, with its weights.

    The same as `<Module>.load_from_checkpoint(path)` with the module class named in the checkpoint;
    checkpoints written before trainlab stored hyperparameters get them from their run config.
    """
    checkpoint = load_checkpoint(path)  # a missing, foreign or damaged file is one clear error
    run_config = checkpoint[CONFIG_KEY]
    model_class = get_class(run_config["model"]["_target_"])
    stored = {} if checkpoint.get("hyper_parameters") else build_settings(run_config)
    return model_class.load_from_checkpoint(path, map_location="cpu", weights_only=True, **stored)


def build_settings(run_config: dict[str, Any]) -> dict[str, Any]:
    """The keyword arguments a trainlab LightningModule is built with, from a run config: its model
    section's settings, and the optimizer, scheduler and regularizer sections."""
    settings = {key: value for key, value in run_config["model"].items() if key != "_target_"}
    return {**settings, **{part: run_config.get(part) for part in ("optimizer", "scheduler", "regularizer")}}


class AtomicCheckpointIO(TorchCheckpointIO):
    """Writes each checkpoint to a temporary file beside it, then renames it into place.

    A process killed while saving (Ctrl-C, SIGTERM, SIGKILL, a full disk) leaves the previous
    last.ckpt whole: the rename is atomic on a local file system, and the half-written temporary
    file is removed or left under a name that no run reads. Remote paths (s3://, ...) are written
    as Lightning writes them.
    """

    def save_checkpoint(self, checkpoint: dict[str, Any], path: str | Path, storage_options: Any = None) -> None:
        if "://" in str(path):
            super().save_checkpoint(checkpoint, path, storage_options)
            return
        temporary = Path(f"{path}.{os.getpid()}.partial")
        try:
            super().save_checkpoint(checkpoint, temporary, storage_options)
            os.replace(temporary, path)
        finally:
            temporary.unlink(missing_ok=True)
