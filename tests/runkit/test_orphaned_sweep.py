"""A sweep whose own process is killed (SIGKILL: nothing can be told) leaves no job process behind: each job
in a process of its own stops, records itself as interrupted, and the sweep's command run again finishes
every job, with one point per epoch."""

import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from runkit.runs.reading import find_run_folders
from runkit.runs.status import read_status
from tests.runkit.helpers.process import BIN
from tests.runkit.test_interruptions import LONG_EPOCHS, first_checkpoint_epoch, val_steps

JOBS = 2


def children(pid: int) -> set[int]:
    """The processes `pid` started and that still run."""
    found: set[int] = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        found |= {int(child) for child in (task / "children").read_text().split()}
    return found


def alive(pid: int) -> bool:
    """Whether `pid` runs: a process that ended but that nobody has reaped yet (a zombie) does not."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError):
        return False


def wait_until(condition: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.5)
    return condition()


def every_job_saved(sweep: Path) -> bool:
    """Whether each of the sweep's jobs has written a whole last.ckpt: all of them are training."""
    folders = list(sweep.glob("00*"))
    saved = [first_checkpoint_epoch(folder / "checkpoints" / "last.ckpt") for folder in folders]
    return len(folders) == JOBS and None not in saved


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="finds the sweep's processes through Linux's /proc")
def test_a_killed_sweep_leaves_no_job_running_and_its_command_finishes_every_job(tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"
    command = [
        str(BIN / "trainlab-train"),
        "-m",
        "hydra/launcher=joblib",
        f"hydra.launcher.n_jobs={JOBS}",
        *LONG_EPOCHS,
        "seed=1,2",
        f"hydra.sweep.dir={sweep}",
    ]
    process = subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    assert wait_until(lambda: every_job_saved(sweep), timeout=300) and process.poll() is None, "no job started"
    jobs = children(process.pid)
    process.send_signal(signal.SIGKILL)
    process.wait()

    assert wait_until(lambda: not any(alive(pid) for pid in jobs), timeout=120), "a job process outlived its sweep"
    statuses = {folder.name: read_status(folder).get("status") for folder in find_run_folders(sweep)}
    assert len(statuses) == JOBS and set(statuses.values()) <= {"interrupted", "ok"}, statuses

    again = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=900)
    assert again.returncode == 0, again.stderr[-3000:]
    for folder in find_run_folders(sweep):
        assert read_status(folder)["status"] == "ok"
        steps = val_steps(folder)
        assert len(steps) == 3 and steps == sorted(steps)  # one point per epoch, none twice
