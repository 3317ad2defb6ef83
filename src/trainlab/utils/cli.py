"""Turns a user's mistake into one line on stderr and a non-zero exit, instead of a traceback."""

import functools
import sys
from collections.abc import Callable
from typing import TypeVar

from hydra.errors import InstantiationException

from trainlab.errors import ConfigError
from trainlab.utils.run_folder import discard_unstarted_run_folder

T = TypeVar("T")

USER_ERROR_EXIT_CODE = 2


def user_error_message(error: BaseException) -> str | None:
    """The one-line message of a user error (possibly wrapped by Hydra's instantiate), or None."""
    while error is not None:
        if isinstance(error, ConfigError):
            return str(error)
        if not isinstance(error, InstantiationException):
            return None
        error = error.__cause__
    return None


def exit_on_user_error(task: Callable[..., T]) -> Callable[..., T]:
    """Wrap an entry point so that a ConfigError ends the process with its message and exit code 2."""

    @functools.wraps(task)
    def wrapper(*args, **kwargs) -> T:
        try:
            return task(*args, **kwargs)
        except (ConfigError, InstantiationException) as error:
            message = user_error_message(error)
            if message is None:
                raise
            print(f"Error: {message}", file=sys.stderr)
            discard_unstarted_run_folder()  # nothing was trained: leave no folder that looks like a result
            raise SystemExit(USER_ERROR_EXIT_CODE) from None

    return wrapper
