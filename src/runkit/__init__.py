"""runkit: trainlab's run machinery, around the researcher's own Lightning code.

Run folders and status files, resume and interruption, sweeps and searches, one-line config errors, checkpoints
that rebuild their model, summaries and the console. It reaches the researcher's objects only through config and
Lightning's public API, and is installed beside them by `make install`.
"""

from collections.abc import Sequence
from pathlib import Path
from typing import Any

# The configs' own interpolations, before any config is composed (in-process, or by a console script's Hydra).
from runkit.runs import resolvers  # noqa: F401

__version__ = "0.1.0"


def load_model(ckpt_path: str | Path, trusted_packages: Sequence[str] = ()) -> Any:
    """The model a `trainlab-train` checkpoint holds, with its weights, from nothing but the checkpoint's path.

    Rebuilt from the run config stored in the checkpoint, whatever LightningModule the run used. The stored config
    may name only code the project trusts (trusted_code.py), or packages you add in `trusted_packages`.
    """
    from runkit.checkpoints import load_trained_model  # torch and Lightning load only when a model does

    return load_trained_model(ckpt_path, trusted_packages)
