"""Run folders: refuse to reuse one that holds results, and clean up one that a config error left empty."""

import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from trainlab.errors import ConfigError

# Set when this module is first imported, before Hydra creates the run folder.
PROCESS_START = time.time()

# What Hydra and the start of a run write before any training: the saved config and the log files.
START_FILES = {".hydra/config.yaml", ".hydra/hydra.yaml", ".hydra/overrides.yaml", "config_tree.log"}


def chosen_by_user(key: str) -> bool:
    """Whether `key` (e.g. hydra.run.dir) was set on the command line."""
    return any(override.split("=", 1)[0].lstrip("+~") == key for override in HydraConfig.get().overrides.hydra)


def discard_unstarted_run_folder() -> bool:
    """Delete this process's run folder if it holds only what Hydra wrote at start; return whether it did.

    Called when a config error stops a run before it trained, so that no folder is left behind
    that looks like a result. A folder the user named (hydra.run.dir / hydra.sweep.dir) is never
    touched, nor one holding any file that this process did not write.
    """
    if not HydraConfig.initialized() or chosen_by_user("hydra.run.dir") or chosen_by_user("hydra.sweep.dir"):
        return False
    folder = Path(HydraConfig.get().runtime.output_dir)
    if not folder.is_dir():
        return False
    log_file = Path(HydraConfig.get().job_logging.handlers.file.filename).name
    for path in folder.rglob("*"):
        if path.is_dir():
            continue
        name = path.relative_to(folder).as_posix()
        if name not in START_FILES | {log_file} or path.stat().st_mtime < PROCESS_START:
            return False
    shutil.rmtree(folder)
    return True


# Where DDP launchers (Lightning's, torchrun, SLURM, LSF) put a process's rank; Lightning reads the same
# variables in this order. Reading them here spares the 3-4 s import of Lightning before a config check.
RANK_VARIABLES = ("RANK", "LOCAL_RANK", "SLURM_PROCID", "JSM_NAMESPACE_RANK")


def process_rank() -> int:
    """This process's DDP rank, 0 when it was not started as one of several processes."""
    rank = next((os.environ[key] for key in RANK_VARIABLES if key in os.environ), "0")
    return int(rank)


def refuse_folder_with_checkpoints(checkpoint_dir: Path) -> None:
    """A fresh run must not write into a folder that already holds another run's checkpoints."""
    if process_rank() > 0:  # DDP's other processes join rank 0's run; rank 0 has checked the folder
        return
    existing = sorted(checkpoint_dir.glob("*.ckpt")) if checkpoint_dir.is_dir() else []
    if existing:
        raise ConfigError(
            f"hydra.run.dir={checkpoint_dir.parent} already holds checkpoints ({existing[0].name}); "
            "start a fresh run in a new folder, or add ckpt_path=last to resume that run."
        )


class GuardRunFolder(Callback):
    """Hydra callback: refuse a fresh run in a folder holding checkpoints, before Hydra writes anything into it.

    Hydra saves the run's config into `<run dir>/.hydra/` before the task starts, which would
    overwrite the saved config of the run that already lives there.
    """

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        if config.get("ckpt_path") is not None or not config.get("train", True):
            return
        run_dir = Path(config.hydra.run.dir)
        try:
            refuse_folder_with_checkpoints(run_dir / "checkpoints")
        except ConfigError as error:
            print(f"Error: {error}", file=sys.stderr)
            raise SystemExit(2) from None
