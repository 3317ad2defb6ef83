"""A sweep's job in a process of its own (joblib, submitit_local) stops when the sweep's process dies.

Such a process is a child of the sweep's. Killed with SIGKILL, the sweep can tell it nothing: joblib's
workers would train on alone, and then wait minutes for work that never comes, and a rerun of the sweep
would meet them in its job folders. So the job watches its parent: once it is gone (the child is
re-parented), the job is stopped as SIGTERM stops it, recorded as interrupted and resumed when the sweep's
command runs again, and the process exits. A job on a cluster node is not the sweep's child, and
outlives it as it should.
"""

import os
import signal
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

# Set by the sweep's process for the processes it starts, `<host>:<pid>`: a pid means nothing on another machine.
SWEEP_PROCESS_VARIABLE = "RUNKIT_SWEEP_PROCESS"
CHECK_EVERY_S = 2.0
# How long a stopped job may take to write its status and its last checkpoint before the process exits anyway.
STOPPING_GRACE_S = 20.0

_watching = threading.Lock()
_job_running = threading.Event()


def mark_sweep_process() -> None:
    """Called in the sweep's own process: the processes it starts from now on know their parent is the sweep."""
    os.environ[SWEEP_PROCESS_VARIABLE] = f"{socket.gethostname()}:{os.getpid()}"


def is_sweep_child() -> bool:
    """Whether this process's parent is the sweep's process, on this machine (not a cluster's job)."""
    host, _, pid = os.environ.get(SWEEP_PROCESS_VARIABLE, "").rpartition(":")
    return host == socket.gethostname() and pid.isdigit() and int(pid) == os.getppid()


def watch_the_sweep() -> None:
    """In a sweep's child process, start (once) the thread that stops the job and the process when the sweep
    dies."""
    if not is_sweep_child() or not _watching.acquire(blocking=False):
        return
    parent = os.getppid()
    threading.Thread(target=stop_when_orphaned, args=(parent,), name="runkit-sweep-watch", daemon=True).start()


def stop_when_orphaned(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(CHECK_EVERY_S)
    if _job_running.is_set():
        os.kill(os.getpid(), signal.SIGTERM)  # the job records itself as interrupted, as on SLURM's SIGTERM
        deadline = time.monotonic() + STOPPING_GRACE_S
        while _job_running.is_set() and time.monotonic() < deadline:
            time.sleep(0.1)
    # os._exit (documented in Python's os module): end at once, skipping the worker pool's exit handlers, which
    # would wait on a parent that is gone; nobody is left to give this process more work.
    os._exit(128 + signal.SIGTERM)


@contextmanager
def job_running() -> Iterator[None]:
    """Around a job: the watch lets it record how it ended before the process exits."""
    _job_running.set()
    try:
        yield
    finally:
        _job_running.clear()
