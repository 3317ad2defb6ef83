"""trainlab: a Lightning + Hydra research template."""

from pathlib import Path
from typing import Any

__version__ = "0.1.0"


def load_model(ckpt_path: str | Path) -> Any:
    """The model a `trainlab-train` checkpoint holds, with its weights, from nothing but the checkpoint's path.

    Rebuilt from the run config stored in the checkpoint; the same as
    `ClassificationModule.load_from_checkpoint(ckpt_path)` with the module class the run used.
    """
    from trainlab.checkpoints import load_trained_model  # torch and Lightning load only when a model does

    return load_trained_model(ckpt_path)
