"""One process per run folder: a lock a run holds while it runs, so that two sweeps into one folder, or two runs
with one hydra.run.dir, never train the same job at once.

The lock is the kernel's (flock) on a file in the run folder, `.running.lock`. The kernel releases it when its
process ends, however it ends, so a lock left by a killed process is never in the way. The second process waits
for the first to finish the job, then decides afresh from the job's status: a finished job is skipped, an
interrupted one resumed. The holder removes the file when it lets go, so a finished run's folder holds none.
"""

import atexit
import contextlib
import logging
import os
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from runkit.process.mode import process_rank

log = logging.getLogger(__name__)

LOCK_FILE = ".running.lock"  # holds who runs the folder: `pid <pid> on <host> since <time>`

_held: dict[Path, IO[str]] = {}  # the run folders this process holds, by their resolved path


def hold_run_folder(folder: Path) -> None:
    """Hold `folder`'s lock until `release_run_folder` or the process's end; while another process holds it, say
    so in one line and wait. Only the first process of a run takes it: DDP's other ranks run in its folder."""
    try:
        import fcntl
    except ImportError:  # Windows: no flock; runs there are one process each
        return
    key = folder.resolve()
    if key in _held or process_rank() > 0:
        return
    folder.mkdir(parents=True, exist_ok=True)
    said = False
    while True:
        # Open past this function, for as long as the lock is held; never truncated before it is held.
        handle = open(folder / LOCK_FILE, "a+")  # noqa: SIM115
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if not said:
                log.warning(
                    "Waiting for %s: another process (%s) is running this job; it goes on here once that one ends.",
                    folder,
                    holder(folder),
                )
                said = True
            fcntl.flock(handle, fcntl.LOCK_EX)
        if still_the_lock_file(handle, folder / LOCK_FILE):
            break
        handle.close()  # the holder removed the file as it let go: lock the one now there
    handle.seek(0)
    handle.truncate()
    handle.write(f"pid {os.getpid()} on {socket.gethostname()} since {time.strftime('%Y-%m-%d %H:%M:%S')}\n")
    handle.flush()
    _held[key] = handle


def still_the_lock_file(handle: IO[str], path: Path) -> bool:
    """Whether the locked file is still the one at `path` (not removed by the holder that let go meanwhile)."""
    try:
        return os.stat(path).st_ino == os.fstat(handle.fileno()).st_ino
    except FileNotFoundError:
        return False


def release_run_folder(folder: Path) -> None:
    """Let the next process have `folder` (a sweep's next job may run in this same process)."""
    handle = _held.pop(folder.resolve(), None)
    if handle is None:
        return
    # Removed while still held, so a waiting process locks a new file; the folder may be gone (a run that never
    # started is removed) or read-only.
    with contextlib.suppress(OSError):
        (folder / LOCK_FILE).unlink()
    handle.close()  # closing the file releases the lock


@atexit.register
def release_all() -> None:
    """A process that ends while holding a folder (a refused run exits from Hydra's callback) lets it go cleanly."""
    for folder in list(_held):
        release_run_folder(folder)


@contextmanager
def holding_run_folder(folder: Path) -> Iterator[None]:
    """Hold `folder` for the block (waiting while another process runs it)."""
    hold_run_folder(folder)
    try:
        yield
    finally:
        release_run_folder(folder)


def holder(folder: Path) -> str:
    """Who holds `folder`, as its lock file says."""
    try:
        return (folder / LOCK_FILE).read_text().strip() or "starting"
    except OSError:
        return "unknown"
