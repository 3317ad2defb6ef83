"""A run as a job of `hydra/launcher=slurm`: SLURM's warning before the time limit, and the requeue after it.

SLURM warns a submitit job `signal_delay_s` before its time limit with USR2 (submitit's choice of signal;
SUBMITIT_PREEMPT_SIGNAL changes it). submitit's own handler requeues the job wherever the signal lands, so
trainlab catches the signal first, like Ctrl-C (process.interruptible): the run stops, its status.yaml says
interrupted, and only then is the job handed to submitit's handler, which requeues it (the requeued job resumes
from last.ckpt in the same folder) or declines when the job is out of requeues.
"""

import signal
import sys
from collections.abc import Callable
from typing import Any


def time_limit_signal() -> signal.Signals | None:
    """The signal SLURM sends this process before its time limit; None outside a SLURM job started by submitit."""
    submitit = sys.modules.get("submitit")  # a submitit job has loaded it to run this; other runs never import it
    if submitit is None:
        return None
    try:
        environment = submitit.JobEnvironment()
    except RuntimeError:  # submitit's answer outside any job, e.g. in a sweep's launching process
        return None
    return signal.Signals["SIG" + environment.USR_SIG] if environment.cluster == "slurm" else None


def hand_over_to_submitit(handler: Callable[[int, Any], Any] | int | None, signum: int) -> str | None:
    """Call submitit's handler for the time-limit signal: on rank 0 it requeues the job and ends the process.

    Returns why it did not requeue (out of requeues); None on the other ranks, whose job rank 0 requeues.
    """
    if not callable(handler):  # a DDP rank that Lightning started inside the job: submitit is not in this process
        return None
    try:
        handler(signum, None)
    except Exception as declined:  # submitit's UncompletedJobError, e.g. "timed-out too many times"
        return str(declined).removeprefix("Job not requeued because: ").rstrip(".")
    return None


def ignore_late_warning() -> None:
    """A finished job ignores the time-limit warning from now on.

    A job that ends inside the warning window can get the signal while Python exits, after Python has put
    the signal's default action (end the process) back: SLURM then records the finished job as FAILED with
    exit code 140. An ignored signal stays ignored through the exit, so the job ends COMPLETED.
    """
    signum = time_limit_signal()
    if signum is not None:
        signal.signal(signum, signal.SIG_IGN)
