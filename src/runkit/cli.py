"""What every console script shares: a user's mistake ends it with one line and exit code 2, and it exits quickly."""

import functools
import gc
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

from hydra.errors import InstantiationException

from runkit.config import (
    CommandLine,
    ConfigError,
    check_multirun,
    exit_with_error,
    explain,
    read_command_line,
    user_error_message,
)
from runkit.config.errors import USER_ERROR_EXIT_CODE, RankFailed, ResourceError
from runkit.process.mode import process_rank
from runkit.runs.folder import discard_unstarted_run_folder

T = TypeVar("T")

# With HYDRA_FULL_ERROR=1 Hydra raises a composition error instead of printing it; the console scripts set it
# until the task starts and keep the user's own setting here, in the environment, for the processes they start.
FULL_ERROR = "HYDRA_FULL_ERROR"
USERS_FULL_ERROR = "TRAINLAB_USERS_HYDRA_FULL_ERROR"


def exit_on_user_error(task: Callable[..., T]) -> Callable[..., T]:
    """Wrap an entry point so that a ConfigError ends the process with its message and exit code 2."""

    @functools.wraps(task)
    def wrapper(*args, **kwargs) -> T:
        restore_full_error_setting()  # composed: from here on Hydra reports the task's errors as the user chose
        try:
            return task(*args, **kwargs)
        except (ConfigError, InstantiationException) as error:
            message = user_error_message(error)
            if message is None or os.environ.get(FULL_ERROR) == "1":  # the developer's full traceback
                raise
            if isinstance(error, RankFailed):  # the rank that failed first printed its line; status.yaml holds it
                # Another rank than 0 ends with 0: a non-zero code would make Lightning's launcher SIGKILL rank 0
                # before rank 0 has ended the run (rank 0's own code tells how the run ended).
                raise SystemExit(USER_ERROR_EXIT_CODE if process_rank() == 0 else 0) from None
            if not isinstance(error, ResourceError):  # the machine stopped a run it started: its record stays
                discard_unstarted_run_folder()  # a mistake, nothing trained: leave no folder that looks like a result
            rank = process_rank()
            exit_with_error(f"rank {rank}: {message}" if rank > 0 else message)

    return wrapper


def run_console_script(hydra_main: Callable[[], object], config_name: str) -> None:
    """Run a console script's Hydra main (its config is configs/<config_name>.yaml): a mistake Hydra refuses on
    the command line ends it with one line and exit code 2, and Python exits without a last full garbage collection.

    At exit Python collects garbage once more over every object still alive: after importing torch,
    Lightning and their dependencies that is millions of objects, seconds of work after the run is over.
    `gc.freeze()` moves them out of the collector's reach; exit handlers, log flushing and thread joins
    still run as usual, and the operating system frees the memory anyway.
    """
    try:
        command = checked_command_line(config_name)
        if command is None or command.multirun:
            hydra_main()  # what the check does not read, and a developer's full traceback, stay Hydra's
        else:
            run_reporting_mistakes(hydra_main, command)
    finally:
        gc.freeze()


def checked_command_line(config_name: str) -> CommandLine | None:
    """The command line for Hydra to run with its mistakes told in one line, or None to leave it all to Hydra.

    A multirun is checked here, before Hydra runs: its jobs are composed after the sweep folder is written.
    """
    if os.environ.get(FULL_ERROR) == "1":
        return None
    try:
        command = read_command_line(sys.argv[1:], config_name)
        if command is not None and command.multirun:
            check_multirun(command)
    except ConfigError as error:
        exit_with_error(error)
    return command


def run_reporting_mistakes(hydra_main: Callable[[], object], command: CommandLine) -> None:
    """Run Hydra's main with its composition errors raised, and tell a mistake among them in one line."""
    try:
        with composition_errors_raised():
            hydra_main()
    except Exception as error:
        message = explain(error, command)
        if message is None:
            raise
        exit_with_error(message)


@contextmanager
def composition_errors_raised() -> Iterator[None]:
    """HYDRA_FULL_ERROR=1 until the task starts (`exit_on_user_error` restores the user's setting there)."""
    os.environ[USERS_FULL_ERROR] = os.environ.get(FULL_ERROR, "")
    os.environ[FULL_ERROR] = "1"
    try:
        yield
    finally:
        restore_full_error_setting()


def restore_full_error_setting() -> None:
    """Put back the user's HYDRA_FULL_ERROR, in this process or one started before the task began (a sweep's
    worker inherits the environment)."""
    users = os.environ.pop(USERS_FULL_ERROR, None)
    if users is None:
        return
    if users:
        os.environ[FULL_ERROR] = users
    else:
        os.environ.pop(FULL_ERROR, None)
