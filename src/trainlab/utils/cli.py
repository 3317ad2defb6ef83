"""Turns a user's mistake into one line on stderr and a non-zero exit, instead of a traceback."""

import atexit
import functools
import os
import sys
import threading
from collections.abc import Callable
from typing import TypeVar

from hydra.core.hydra_config import HydraConfig
from hydra.errors import InstantiationException
from hydra.types import RunMode

from trainlab.errors import ConfigError
from trainlab.utils.run_folder import discard_unstarted_run_folder

T = TypeVar("T")

USER_ERROR_EXIT_CODE = 2

# The Hydra mode of every job this process ran (Hydra forgets it once a job returns):
# run_and_exit skips the interpreter teardown only after exactly one single run.
JOB_MODES: list[RunMode] = []


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
        if HydraConfig.initialized():
            JOB_MODES.append(HydraConfig.get().mode)
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


def exit_code(stop: SystemExit) -> int:
    """The status Python would exit with for this SystemExit (a message means 1, after printing it)."""
    if stop.code is None:
        return 0
    if isinstance(stop.code, int):
        return stop.code
    print(stop.code, file=sys.stderr)
    return 1


def teardown_can_be_skipped() -> bool:
    """After a single run with no thread still working: a multirun's launcher may own worker
    processes and threads, and Python waits for unfinished threads, so those exit the normal way."""
    single_run = JOB_MODES == [RunMode.RUN]
    busy = [t for t in threading.enumerate() if t is not threading.main_thread() and not t.daemon]
    return single_run and not busy


def run_and_exit(hydra_main: Callable[[], object]) -> None:
    """Run a console script's Hydra main, then end the process without tearing down the interpreter.

    Freeing the thousands of modules and objects that torch and Lightning leave behind takes 1-2 s
    on 2 cores, after the run is over; the operating system frees the memory anyway. Exit handlers
    still run and output is flushed, so log files, event files and checkpoints are complete.
    """
    try:
        hydra_main()
        code = 0
    except SystemExit as stop:
        code = exit_code(stop)
    if not teardown_can_be_skipped():
        sys.exit(code)
    atexit._run_exitfuncs()  # what Python runs at exit: logging.shutdown(), library clean-ups
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
