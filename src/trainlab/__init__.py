"""trainlab: a Lightning + Hydra research template."""

from collections.abc import Sequence
from pathlib import Path
from typing import Any

__version__ = "0.1.0"


def load_model(ckpt_path: str | Path, trusted_packages: Sequence[str] = ()) -> Any:
    """The model a `trainlab-train` checkpoint holds, with its weights, from nothing but the checkpoint's path.

    Rebuilt from the run config stored in the checkpoint; the same as
    `ClassificationModule.load_from_checkpoint(ckpt_path)` with the module class the run used. The stored config
    may name only code the project trusts (trusted_code.py), or packages you add in `trusted_packages`.
    """
    from trainlab.checkpoints import load_trained_model  # torch and Lightning load only when a model does

    return load_trained_model(ckpt_path, trusted_packages)
