"""Settings that name a folder (`data.data_dir`, `paths.log_dir`, any key ending in `_dir`) checked before anything
is built: a file where a folder is expected, or a folder that cannot be written, is one line naming what was
found, not a library's traceback."""

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

from omegaconf import DictConfig
from omegaconf.errors import OmegaConfBaseException

from runkit.config.errors import ConfigError

# Less free space than this is a full disk for a run folder: not room for what Hydra and the run write first
# (.hydra/, status.yaml, the log file; about 20 KiB). A run with room for those says so itself if a later write fails.
FULL_DISK_BYTES = 64 * 1024


def check_folder_settings(cfg: DictConfig) -> None:
    """Raise a ConfigError for the first `*_dir` setting that is, or lies inside, something other than a folder.
    A folder that does not exist yet is fine: runs make theirs."""
    for key, value in folder_settings(cfg):
        problem = not_a_folder(Path(value))
        if problem:
            raise ConfigError(f"{key}={value} {problem}; give a folder (it is made if it does not exist).")


def folder_settings(cfg: DictConfig, prefix: str = "") -> Iterator[tuple[str, str]]:
    """Each setting whose key ends in `_dir`, with its resolved text value; `hydra` and unresolvable values left
    out (those are reported by their own checks)."""
    for key in cfg:
        name = f"{prefix}{key}"
        if name == "hydra":
            continue
        try:
            value = cfg[key]
        except OmegaConfBaseException:
            continue
        if isinstance(value, DictConfig):
            yield from folder_settings(value, f"{name}.")
        elif str(key).endswith("_dir") and isinstance(value, str) and value and "://" not in value:
            yield name, value


def not_a_folder(path: Path) -> str | None:
    """What is wrong with `path` as a folder, if anything: it, or the nearest part of it that exists, is a file."""
    for part in [path, *path.parents]:
        if part.is_dir():
            return None
        if part.exists():
            kind = "a file" if part.is_file() else "not a folder"
            return f"is {kind}" if part == path else f"lies inside {part}, which is {kind}"
    return None


def unwritable_folder(path: Path) -> str | None:
    """What keeps this process from making and writing `path`, if anything: a file on the way, a read-only file
    system, no write permission where the nearest existing folder is, or a full disk."""
    problem = not_a_folder(path)
    if problem:
        return problem
    existing = next(part for part in [path, *path.parents] if part.exists())
    where = "is" if existing == path else f"lies in {existing}, which is"
    if os.access(existing, os.W_OK | os.X_OK):
        free = shutil.disk_usage(existing).free
        return f"{where} on a full disk ({free // 1024} KiB free)" if free < FULL_DISK_BYTES else None
    if os.statvfs(existing).f_flag & os.ST_RDONLY:
        return f"{where} on a read-only file system"
    return f"{where} not writable by this user"
