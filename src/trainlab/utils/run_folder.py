"""Run folders: refuse to reuse one that holds results, and clean up one that a config error left empty."""

import shutil
import time
from pathlib import Path

from hydra.core.hydra_config import HydraConfig

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


def refuse_folder_with_checkpoints(checkpoint_dir: Path) -> None:
    """A fresh run must not write into a folder that already holds another run's checkpoints."""
    existing = sorted(checkpoint_dir.glob("*.ckpt")) if checkpoint_dir.is_dir() else []
    if existing:
        raise ConfigError(
            f"hydra.run.dir={checkpoint_dir.parent} already holds checkpoints ({existing[0].name}); "
            "start a fresh run in a new folder, or add ckpt_path=last to resume that run."
        )
