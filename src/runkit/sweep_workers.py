"""Workers of a search (`hydra.sweeper.workers=N`): N processes share one Optuna study, and each takes the next
trial as soon as it is free, so no slot waits for the slowest trial of a batch.

The command a user types starts the workers and, on one machine, waits for them; each worker is that same
command again, marked by WORKER_VARIABLE, running one trial at a time in its own process (Hydra's basic
launcher). A worker shows it is alive by touching its file in `<sweep>/workers/`; a trial whose worker stopped
(its process gone, or its file silent for `hydra.sweeper.worker_timeout` seconds) is taken over by the next
worker that looks: the study records the lost trial as failed and queues its parameters again, and the new
trial runs in the lost one's job folder, where it resumes from its last.ckpt (runs.resume.sweep_job_plan).
"""

import contextlib
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

# Set in a worker's environment: its name. The command without it starts workers; with it, it is one.
WORKER_VARIABLE = "TRAINLAB_SWEEP_WORKER"
# Set by a worker for the job it runs in its own process: the Optuna trial the job reports to. A trial that
# took over a lost one runs in that one's job folder, so the job's number is not always its trial's.
WORKER_TRIAL_VARIABLE = "TRAINLAB_WORKER_TRIAL"
WORKERS_DIR = "workers"
# The trial's user attributes: the worker running it, its job folder's number, and the lost trial it takes over
# (a lost trial does not count towards n_trials: its parameters run again, in the trial that takes it over).
WORKER, JOB, TAKES_OVER = "worker", "job", "takes_over"


def worker_name() -> str | None:
    return os.environ.get(WORKER_VARIABLE)


def this_worker() -> str:
    """A name no other live worker has: host and process, and the SLURM job where there is one."""
    slurm_job = os.environ.get("SLURM_ARRAY_JOB_ID") or os.environ.get("SLURM_JOB_ID")
    task = os.environ.get("SLURM_ARRAY_TASK_ID")
    slurm = f"-slurm{slurm_job}" + (f"_{task}" if task else "") if slurm_job else ""
    return f"{socket.gethostname()}-{os.getpid()}{slurm}"


# --- signs of life ---------------------------------------------------------------------------------------------
def heartbeat_file(sweep_dir: Path, worker: str) -> Path:
    return sweep_dir / WORKERS_DIR / f"{worker}.alive"


@contextlib.contextmanager
def beating(sweep_dir: Path, worker: str, timeout_s: float) -> Iterator[None]:
    """Touch this worker's file every timeout/4 seconds while the block runs; remove it at the end."""
    path = heartbeat_file(sweep_dir, worker)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch()
    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(timeout_s / 4):
            path.touch()

    thread = threading.Thread(target=beat, name="sweep-worker-heartbeat", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
        path.unlink(missing_ok=True)


def is_alive(sweep_dir: Path, worker: str, timeout_s: float) -> bool:
    """A worker is alive while its file is fresh; on this host, only while its process also exists."""
    host, _, pid = worker.split("-slurm")[0].rpartition("-")
    if host == socket.gethostname() and pid.isdigit() and not process_exists(int(pid)):
        return False
    path = heartbeat_file(sweep_dir, worker)
    try:
        return time.time() - path.stat().st_mtime < timeout_s
    except FileNotFoundError:
        return False


def process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: it exists
    return True


# --- the queue of trials ---------------------------------------------------------------------------------------
@contextlib.contextmanager
def queue_lock(sweep_dir: Path) -> Iterator[None]:
    """One worker at a time counts the study's trials and asks for the next: Optuna's file lock, which holds on a
    shared file system (it creates a link, which NFS makes atomic)."""
    from optuna.storages.journal import JournalFileSymlinkLock

    # It waits until the lock is free; a lock left by a worker killed while holding it is taken after 30 s.
    lock = JournalFileSymlinkLock(str(sweep_dir / WORKERS_DIR / "queue"))
    lock.acquire()
    try:
        yield
    finally:
        lock.release()


def counted(study: Any) -> list[Any]:
    """The trials that count towards n_trials: all but the lost ones, whose parameters run again."""
    trials = study.get_trials(deepcopy=False)
    lost = {trial.user_attrs[TAKES_OVER] for trial in trials if TAKES_OVER in trial.user_attrs}
    return [trial for trial in trials if trial.number not in lost]


def still_open(study: Any) -> list[Any]:
    """Trials running or queued: a worker with nothing to ask waits for them, to take over any that is lost."""
    from optuna.trial import TrialState

    return study.get_trials(deepcopy=False, states=[TrialState.RUNNING, TrialState.WAITING])


def take_over_lost_trials(study: Any, sweep_dir: Path, timeout_s: float) -> None:
    """Record each running trial whose worker stopped as lost (failed) and queue its parameters again."""
    from optuna.trial import TrialState

    for trial in study.get_trials(deepcopy=False, states=[TrialState.RUNNING]):
        # Under the queue lock a running trial names its worker, unless its worker died while asking for it or it
        # was left running by a search without workers: either way nobody runs it.
        worker = trial.user_attrs.get(WORKER)
        if worker is not None and is_alive(sweep_dir, worker, timeout_s):
            continue
        job = trial.user_attrs.get(JOB, trial.number)
        study.tell(trial.number, state=TrialState.FAIL)
        study.enqueue_trial(trial.params, user_attrs={JOB: job, TAKES_OVER: trial.number}, skip_if_exists=False)
        log.warning(
            "Trial %d's worker %s stopped; its parameters are queued again, to resume in its job folder %03d.",
            trial.number,
            worker or "(none recorded)",
            job,
        )


# --- starting workers ------------------------------------------------------------------------------------------
def worker_command(sweep_dir: Path, arguments: list[str]) -> list[str]:
    """The sweep's own command for one worker: the same overrides, its folder fixed, jobs run in-process."""
    replaced = ("hydra.sweep.dir=", "hydra/launcher=", "hydra.launcher.")
    kept = [argument for argument in arguments if not argument.startswith(replaced)]
    return [sys.executable, sys.argv[0], *kept, f"hydra.sweep.dir={sweep_dir}", "hydra/launcher=basic"]


def start_local_workers(count: int, sweep_dir: Path, arguments: list[str]) -> list[subprocess.Popen]:
    """`count` worker processes on this machine. Each ends when this process does (Linux's parent-death
    signal), so a killed sweep leaves no worker training on its own."""
    command = worker_command(sweep_dir, arguments)
    workers = []
    for index in range(count):
        env = {**os.environ, WORKER_VARIABLE: f"local-{index}"}
        workers.append(subprocess.Popen(command, env=env, preexec_fn=end_with_parent))
    return workers


def end_with_parent() -> None:
    """In the child, before it runs: SIGTERM it when its parent dies (Linux's PR_SET_PDEATHSIG; elsewhere,
    nothing)."""
    with contextlib.suppress(OSError, AttributeError):
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # 1: PR_SET_PDEATHSIG


def run_worker(command: list[str]) -> int:
    """A worker as a SLURM job runs it: the command in the job's own environment, marked as a worker."""
    task = os.environ.get("SLURM_ARRAY_TASK_ID", "0")
    return subprocess.run(command, env={**os.environ, WORKER_VARIABLE: f"slurm-{task}"}).returncode


SUBMITTED_FILE = "slurm_arrays.txt"  # in <sweep>/workers/: the SLURM arrays of workers submitted, one id a line


def record_submitted(sweep_dir: Path, array_id: str) -> None:
    folder = sweep_dir / WORKERS_DIR
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / SUBMITTED_FILE).open("a") as file:
        file.write(f"{array_id}\n")


def submitted_arrays(sweep_dir: Path) -> list[str]:
    path = sweep_dir / WORKERS_DIR / SUBMITTED_FILE
    return path.read_text().split() if path.is_file() else []


def wait_for(workers: list[subprocess.Popen]) -> list[int]:
    """Each worker's exit code, once all have ended; a Ctrl-C here reaches them too (one process group)."""
    return [worker.wait() for worker in workers]
