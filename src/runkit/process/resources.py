"""When the machine runs out of memory or disk: one line saying what was being done, what it needed against what
the machine has, and the setting or folder to change, instead of the allocator's traceback."""

import errno
import os
import re
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from runkit.config.errors import ResourceError
from runkit.unreadable_files import opened_file, traceback_frames

MEMINFO = Path("/proc/meminfo")
# torch's CPU allocator: "DefaultCPUAllocator: can't allocate memory: you tried to allocate 123 bytes."
CPU_REQUEST = re.compile(r"you tried to allocate (\d+) bytes")
# torch's CUDA allocator: "CUDA out of memory. Tried to allocate 2.00 GiB. GPU 0 has a total capacity of 79.2 GiB"
CUDA_REQUEST = re.compile(r"Tried to allocate ([\d.]+ [KMGT]?i?B)")
CUDA_TOTAL = re.compile(r"total capacity of ([\d.]+ [KMGT]?i?B)")


def size(count: float) -> str:
    """Bytes in the unit a person reads them in: 512 B, 3.1 GiB, 5.9 TiB."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if count < 1024 or unit == "TiB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    raise AssertionError("unreachable")


def memory_of_machine() -> str:
    """'23.4 GiB (17.1 GiB available)' from /proc/meminfo; the physical total elsewhere."""
    if MEMINFO.is_file():
        fields = dict(line.split(":", 1) for line in MEMINFO.read_text().splitlines() if ":" in line)
        total, available = (int(fields[key].split()[0]) * 1024 for key in ("MemTotal", "MemAvailable"))
        return f"{size(total)} ({size(available)} available)"
    return size(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))


def out_of_memory(error: BaseException) -> str | None:
    """'it needed X, the machine has Y' for an allocation that failed; None for any other error."""
    import torch

    text = str(error)
    if isinstance(error, torch.OutOfMemoryError) or "CUDA out of memory" in text:
        asked, total = CUDA_REQUEST.search(text), CUDA_TOTAL.search(text)
        needed = f"it asked for {asked[1]} more" if asked else "it needed more"
        return f"{needed}, the GPU has {total[1] if total else 'less'}"
    asked = CPU_REQUEST.search(text)
    if isinstance(error, MemoryError) or (isinstance(error, RuntimeError) and asked):
        needed = f"it needed {size(int(asked[1]))} at once" if asked else "it needed more"
        return f"{needed}, the machine has {memory_of_machine()}"
    return None


@contextmanager
def memory_limit(doing: str | Callable[[], str], fixes: str | Callable[[], str]) -> Iterator[None]:
    """Within the block, running out of memory is one ResourceError line: what was being done, what it needed
    against what the machine has, and `fixes` (the settings that ask for less); either may be asked for only
    when memory runs out, when it depends on how far the block got."""
    try:
        yield
    except (MemoryError, RuntimeError) as error:
        explained = memory_error(error, doing, fixes)
        if explained is None:
            raise
        raise explained from None


def memory_error(
    error: BaseException, doing: str | Callable[[], str], fixes: str | Callable[[], str]
) -> ResourceError | None:
    """memory_limit's one line for an error, or None when the error is not one of running out of memory."""
    shortfall = out_of_memory(error)
    if shortfall is None:
        return None
    doing, fixes = (part() if callable(part) else part for part in (doing, fixes))
    return ResourceError(f"Out of memory while {doing}: {shortfall}; {fixes}.")


DISK_FULL = (errno.ENOSPC, errno.EDQUOT)  # no space left, or the user's quota (a cluster's home or scratch) spent


def is_disk_full(error: BaseException, folder: Path) -> bool:
    """Whether a failed write into `folder` failed for want of space: ENOSPC or EDQUOT, or (torch's zip writer
    names no errno) a file system left with almost no free space."""
    if isinstance(error, OSError) and error.errno in DISK_FULL:
        return True
    try:
        return shutil.disk_usage(folder).free < 1024 * 1024
    except OSError:
        return False


def disk_full_error(folder: Path, writing: str) -> ResourceError:
    return ResourceError(
        f"The disk of {folder} is full: {writing} could not be written (earlier checkpoints are whole); free space "
        "there, or write the run to another disk with paths.log_dir=<folder>."
    )


@contextmanager
def disk_space_named(run_folder: Path) -> Iterator[None]:
    """Within the block, a write that fails for want of space, wherever it happens (TensorBoard's event file, the
    CSV or MLflow logger's files, the run's records), is one ResourceError line naming the file. Libraries wrap
    such an error in their own (Lightning's TensorBoard logger in a ValueError), so the whole chain is searched."""
    try:
        yield
    except Exception as error:
        full = None if isinstance(error, ResourceError) else disk_full_in_chain(error)
        if full is None:
            raise
        path = file_named_by(full)
        folder = path.parent if path is not None else run_folder
        raise disk_full_error(folder, f"the file {path.name}" if path is not None else "a file") from error


def disk_full_in_chain(error: BaseException) -> OSError | None:
    """The OSError of a full disk among the error and the errors it was raised from or while handling."""
    seen: set[int] = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, OSError) and error.errno in DISK_FULL:
            return error
        error = error.__cause__ or error.__context__
    return None


def file_named_by(error: OSError) -> Path | None:
    """The file a failed write was writing: the error's own filename, or the file its innermost frames held."""
    if isinstance(error.filename, str):
        return Path(error.filename)
    for frame in reversed(traceback_frames(error)):
        found = next(filter(None, map(opened_file, frame.f_locals.values())), None)
        if found is not None:
            return Path(found)
    return None
