"""Errors a user can cause with a config or a command line, reported as one sentence."""

import difflib
import sys
from collections.abc import Sequence
from typing import NoReturn

from hydra.errors import InstantiationException

from runkit.project import in_packages, researchers_packages

USER_ERROR_EXIT_CODE = 2  # a user's mistake ends every trainlab command with this code, and no traceback


class ConfigError(ValueError):
    """A value in the run's configuration is wrong; the message names it, what was expected and the fix."""


class ResourceError(ConfigError):
    """The machine lacks what the run asks for (memory, disk space): the message says what, and what to change."""


class RankFailed(ConfigError):
    """Under DDP, a rank's end when another rank failed first: that rank printed its line, and status.yaml holds
    it (runs/rank_failure.py)."""


def user_error_message(error: BaseException | None) -> str | None:
    """The one-line message of a user error (possibly wrapped by Hydra's instantiate), or None: a ConfigError,
    or a ValueError that the researcher's own code raised."""
    while error is not None:
        if isinstance(error, ConfigError) or (isinstance(error, ValueError) and raised_by_researchers_code(error)):
            return str(error)
        if not isinstance(error, InstantiationException):
            return None
        error = error.__cause__
    return None


def raised_by_researchers_code(error: BaseException) -> bool:
    """Whether the innermost frame of the error's traceback is in the researcher's packages: they import nothing
    of runkit's, so they tell a user's mistake with a plain ValueError whose message is the one sentence."""
    frame = error.__traceback__
    if frame is None:
        return False
    while frame.tb_next is not None:
        frame = frame.tb_next
    return in_packages(str(frame.tb_frame.f_globals.get("__name__", "")), researchers_packages())


def exit_with_error(error: BaseException | str) -> NoReturn:
    """End the command on a user's mistake: `Error: <the one sentence>` on stderr, and exit code 2."""
    print(f"Error: {error}", file=sys.stderr)
    raise SystemExit(USER_ERROR_EXIT_CODE) from None


def missing_class_error(section: str, target: str) -> ConfigError:
    """A `_target_` that names no class Python can import: a misspelling, or a package not installed."""
    return ConfigError(
        f"{section}._target_={target} is not a class that can be imported; check its spelling and that its "
        "package is installed."
    )


def uneven_batch_error(batch_size: int, processes: int, detail: str = "") -> ConfigError:
    """data.batch_size is the global batch: each of N processes takes batch_size / N, so it must divide."""
    nearest = max(processes, batch_size // processes * processes)
    return ConfigError(
        f"data.batch_size={batch_size} does not divide evenly across {processes} processes{detail}; "
        f"use a multiple of {processes}, e.g. data.batch_size={nearest}."
    )


def did_you_mean(name: str, candidates: Sequence[str]) -> str:
    """ " (did you mean cnn?)" for the candidate closest to a misspelt name; empty when none is close."""
    close = difflib.get_close_matches(name, candidates, n=1)
    return f" (did you mean {close[0]}?)" if close else ""
