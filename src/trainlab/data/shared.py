"""One copy of a sweep's in-memory data, however many jobs use it.

In a multirun, every job builds its datamodule's tensors in its own process: four parallel jobs on
the same data would hold four copies. Here the first job to need a dataset saves its splits to the
sweep folder and every job, the first included, maps that file into memory read-only. The pages then
live once, in the operating system's page cache, shared by all the jobs that map them; jobs that
follow (the basic launcher's, or a resumed sweep's) read the file instead of building the data again.
The folder is removed when the sweep ends.
"""

import hashlib
import json
import logging
import os
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

log = logging.getLogger(__name__)

# Settings that change how batches are served, not what the data are: jobs differing only in them share.
LOADER_SETTINGS = ("batch_size", "eval_batch_size")


def data_key(settings: Mapping[str, Any]) -> str:
    """A name for the data a datamodule's settings make: a hash of them, the loader's left out."""
    settings = {key: value for key, value in settings.items() if key not in LOADER_SETTINGS}
    text = json.dumps(settings, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def shared_data(folder: Path, key: str, build: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """What `build` makes (tensors, in dicts and lists), mapped read-only from `folder/<key>.pt`: built and saved
    by the first caller (others wait on a lock meanwhile), loaded by every later one."""
    path = folder / f"{key}.pt"
    with exclusive_lock(folder / f"{key}.lock"):
        if not path.is_file():
            # A job killed while saving left its partial file, never the whole one; the lock is ours, so no
            # other job is writing: what is there is stale.
            for stale in folder.glob(f"{path.name}.*.partial"):
                stale.unlink()
            partial = path.with_name(f"{path.name}.{os.getpid()}.partial")
            torch.save(build(), partial)
            os.replace(partial, path)  # whole or absent: a job killed while saving leaves no half file
            log.info("Data saved for the sweep's other jobs to share: %s", path)
    return torch.load(path, mmap=True, weights_only=True)


@contextmanager
def exclusive_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on `path` (created if missing) for the block; none on Windows, whose parallel
    sweeps run through launchers of their own."""
    try:
        import fcntl
    except ImportError:
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
