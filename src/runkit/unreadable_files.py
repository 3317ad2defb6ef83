"""A data file that could not be read, told in one line that names it, instead of numpy's or torch's traceback.

The researcher's data module reads its files with whatever library it likes (np.load, torch.load, PIL,
torchvision), and a file cut short or garbled fails deep inside that library with an error that names no file.
runkit cannot know the format, but it can tell *that* a file was being read and *which*: the failure came from
inside a data module or a dataset (a frame whose `self` is one), and the library's own frames, between that one
and where it was raised, hold the file they were reading (an open file object, or the path they were given).
Any other failure, a bug in the model or the data module's own arithmetic, keeps its traceback.
"""

import io
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType

from hydra.errors import InstantiationException

from runkit.config import ConfigError, user_error_message
from runkit.project import in_packages, own_packages


@contextmanager
def naming_unreadable_files() -> Iterator[None]:
    """Within the block, a data file that could not be read is a ConfigError naming it (the original error is
    its cause, for HYDRA_FULL_ERROR=1 and the log)."""
    try:
        yield
    except Exception as error:
        message = unreadable_file_message(error)
        if message is None:
            raise
        raise ConfigError(message) from error


def unreadable_file_message(error: BaseException) -> str | None:
    """One line for an error raised while a data module or dataset read a file, or None for any other error."""
    while isinstance(error, InstantiationException) and error.__cause__ is not None:
        error = error.__cause__  # Hydra's instantiate wraps what a data module's __init__ raised
    if user_error_message(error) is not None or not is_reading_error(error):
        return None
    frames = traceback_frames(error)
    if not any(is_data_code(frame) for frame in frames):
        return None
    path = file_being_read(frames)
    if path is None:
        return None
    return (
        f"The data file {path} could not be read ({who_raised(error, frames)}: {first_line(error)}): it is damaged, "
        "cut short or not in the format its reader expects; copy it again or write it anew."
    )


def is_reading_error(error: BaseException) -> bool:
    """An error a reader raises on bad bytes; not running out of memory, and not an interruption."""
    if isinstance(error, MemoryError) or "out of memory" in str(error).lower():
        return False
    return isinstance(error, Exception)


def traceback_frames(error: BaseException) -> list[FrameType]:
    """The frames the error went through, outermost first."""
    frames, entry = [], error.__traceback__
    while entry is not None:
        frames.append(entry.tb_frame)
        entry = entry.tb_next
    return frames


def is_data_code(frame: FrameType) -> bool:
    """A method of a data module or a dataset: where a run reads its data."""
    import lightning.pytorch as pl  # here, not at the top: a command that fails on its config never loads them
    from torch.utils.data import Dataset

    owner = frame.f_locals.get("self")
    return isinstance(owner, (pl.LightningDataModule, Dataset))


def is_own_code(frame: FrameType) -> bool:
    return is_data_code(frame) or in_packages(module_of(frame), own_packages())


def file_being_read(frames: list[FrameType]) -> str | None:
    """The file the innermost frames were reading. A library's frames say it by an open file object or the path
    they were given. The search ends at the first of the project's own frames, so the file is one that the failing
    call was handed: there an open file object, or, when the failing call was a library's, the one local that
    names a file (its other locals may be anything, and two files leave it unsaid)."""
    for depth in range(len(frames) - 1, -1, -1):
        frame = frames[depth]
        values = list(frame.f_locals.values())
        found = next(filter(None, map(opened_file, values)), None)
        if found is not None:
            return found
        if not is_own_code(frame):
            found = next(filter(None, map(existing_file, values)), None)
            if found is not None:
                return found
            continue
        called_a_library = depth + 1 < len(frames)
        paths = set(filter(None, map(existing_file, values))) if called_a_library else set()
        return paths.pop() if len(paths) == 1 else None
    return None


def opened_file(value: object) -> str | None:
    """The path of a file object opened on a named file."""
    if not isinstance(value, io.IOBase):
        return None
    return existing_file(getattr(value, "name", None))


def existing_file(value: object) -> str | None:
    """A path (str, bytes or os.PathLike) that names a file on disk."""
    if isinstance(value, bytes):  # TensorBoard's writer, for one, holds its file name as bytes
        value = os.fsdecode(value)
    if not isinstance(value, (str, os.PathLike)) or (isinstance(value, str) and ("\n" in value or len(value) > 4096)):
        return None
    try:
        return str(Path(value)) if Path(value).is_file() else None
    except (OSError, ValueError):  # not a usable path at all
        return None


def module_of(frame: FrameType) -> str:
    return str(frame.f_globals.get("__name__", ""))


def who_raised(error: BaseException, frames: list[FrameType]) -> str:
    """The library the error came from (numpy, torch, PIL), or the error's type where the project's code raised it."""
    innermost = module_of(frames[-1]) if frames else ""
    if not innermost or is_own_code(frames[-1]):
        return type(error).__name__
    return innermost.partition(".")[0]


def first_line(error: BaseException) -> str:
    """The error's message on one line, without a C++ source location (`decode_png, /.../x.cpp:62, ...`)."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    text = lines[0] if lines else type(error).__name__
    return re.sub(r"^\(?\w+, \S+\.(?:cpp|h):\d+, ", "", text).rstrip(".")
