"""What every console script shares: a user's mistake ends it with one line and exit code 2, and it exits quickly."""

import functools
import gc
import os
from collections.abc import Callable
from typing import TypeVar

from hydra.errors import InstantiationException

from trainlab.config import ConfigError, exit_with_error, user_error_message
from trainlab.config.errors import ResourceError
from trainlab.runs.folder import discard_unstarted_run_folder

T = TypeVar("T")


def exit_on_user_error(task: Callable[..., T]) -> Callable[..., T]:
    """Wrap an entry point so that a ConfigError ends the process with its message and exit code 2."""

    @functools.wraps(task)
    def wrapper(*args, **kwargs) -> T:
        try:
            return task(*args, **kwargs)
        except (ConfigError, InstantiationException) as error:
            message = user_error_message(error)
            if message is None or os.environ.get("HYDRA_FULL_ERROR") == "1":  # the developer's full traceback
                raise
            if not isinstance(error, ResourceError):  # the machine stopped a run it started: its record stays
                discard_unstarted_run_folder()  # a mistake, nothing trained: leave no folder that looks like a result
            exit_with_error(message)

    return wrapper


def run_console_script(hydra_main: Callable[[], object]) -> None:
    """Run a console script's Hydra main, then let Python exit without a last full garbage collection.

    At exit Python collects garbage once more over every object still alive: after importing torch,
    Lightning and their dependencies that is millions of objects, seconds of work after the run is over.
    `gc.freeze()` moves them out of the collector's reach; exit handlers, log flushing and thread joins
    still run as usual, and the operating system frees the memory anyway.
    """
    try:
        hydra_main()
    finally:
        gc.freeze()
