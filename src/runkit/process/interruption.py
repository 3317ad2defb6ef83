"""Stopping a run cleanly: SIGINT (Ctrl-C), SIGTERM, SIGHUP (a closed terminal) and SLURM's time-limit warning raise
RunInterrupted."""

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from runkit.process.slurm import time_limit_signal


class RunInterrupted(BaseException):
    """SIGINT (Ctrl-C), SIGTERM (what SLURM and Kubernetes send before they kill), SIGHUP (the terminal closed, or
    the ssh session dropped) or SLURM's time-limit warning (see slurm.py) stopped the run.

    A BaseException, like KeyboardInterrupt, so that no `except Exception` on the way mistakes it for a failure.
    `handler_before`: the signal's handler before the run started (submitit's, for the time-limit warning).
    """

    def __init__(self, signum: int, handler_before: Any = None, warned_by_slurm: bool = False) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum
        self.warned_by_slurm = warned_by_slurm  # SLURM's time-limit warning, which submitit goes on to handle
        self.signal_name = signal.Signals(signum).name
        self.exit_code = 128 + signum  # what a shell reports for a process ended by this signal: 130, 143, 129
        self.handler_before = handler_before


def interruption_behind(error: BaseException) -> RunInterrupted | None:
    """The RunInterrupted that `error` was raised while handling, if any. A signal that lands inside a library's
    clean-up (a `finally` or an `__exit__`) can surface as that library's own error, with the stop behind it."""
    seen: set[int] = set()
    cause: BaseException | None = error
    while cause is not None and id(cause) not in seen:
        if isinstance(cause, RunInterrupted):
            return cause
        seen.add(id(cause))
        cause = cause.__cause__ or cause.__context__
    return None


@contextmanager
def interruptible() -> Iterator[None]:
    """Within this block SIGINT, SIGTERM, SIGHUP and SLURM's time-limit warning raise RunInterrupted, once; the
    previous handlers come back after.

    Checkpoints are written atomically (checkpoints.AtomicCheckpointIO), so stopping at any point
    leaves last.ckpt whole. During training Lightning composes its own SIGTERM handler with this one.
    """
    if threading.current_thread() is not threading.main_thread():  # only the main thread receives signals
        yield
        return
    warning = time_limit_signal()
    signals = [signal.SIGINT, signal.SIGTERM, *hang_up_signal(), *filter(None, [warning])]

    def stop(signum: int, frame: Any) -> None:
        for name in signals:  # a second signal (Ctrl-C again, SLURM's SIGTERM on requeue) must not break the clean-up
            signal.signal(name, signal.SIG_IGN)
        raise RunInterrupted(signum, previous[signum], warned_by_slurm=signum == warning)

    previous = {name: signal.signal(name, stop) for name in signals}
    try:
        yield
    finally:
        for name, handler in previous.items():
            signal.signal(name, handler)


def hang_up_signal() -> list[int]:
    """SIGHUP, sent when the terminal closes, unless the run was started to outlive it (`nohup`, which ignores
    it) or the system has none (Windows)."""
    hang_up = getattr(signal, "SIGHUP", None)
    if hang_up is None or signal.getsignal(hang_up) is signal.SIG_IGN:
        return []
    return [hang_up]
