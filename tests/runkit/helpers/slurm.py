"""Talking to the SLURM cluster the slurm tests run on (`make slurm` starts one): its record of a job, and a job
that gets SLURM's time-limit warning at a chosen moment."""

import atexit
import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback

from tests.runkit.helpers.process import ROOT


def cluster_answers() -> bool:
    try:
        return subprocess.run(["sinfo", "--noheader"], capture_output=True, timeout=20).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def can_start_cluster() -> bool:
    """Root on a Debian-like system: what scripts/slurm_cluster.sh needs to install and start a cluster."""
    return os.geteuid() == 0 and Path("/usr/bin/apt-get").exists()


def start_cluster() -> None:
    subprocess.run(["bash", str(ROOT / "scripts" / "slurm_cluster.sh"), "up"], check=True, timeout=600)


def stop_cluster() -> None:
    subprocess.run(["bash", str(ROOT / "scripts" / "slurm_cluster.sh"), "down"], check=True, timeout=120)


def job_ids(sweep: Path) -> list[str]:
    """The SLURM ids of a sweep's jobs, in job order (`12` for a lone job, `12_0`, `12_1` for an array)."""
    names = [path.name.removesuffix("_submitted.pkl") for path in sweep.glob(".submitit/*/*_submitted.pkl")]
    return sorted(names, key=lambda name: int(name.rpartition("_")[2]))


def slurm_record(job_id: str) -> dict[str, str]:
    """SLURM's own record of a job, as `scontrol show job` prints it (JobState, ExitCode, Restarts, ...)."""
    line = subprocess.run(
        ["scontrol", "--oneliner", "show", "job", job_id], capture_output=True, text=True, check=True
    ).stdout
    return dict(field.split("=", 1) for field in line.split() if "=" in field)


def final_record(job_id: str) -> dict[str, str]:
    """SLURM's record of a job once the job has ended: its result file comes a moment before."""
    return wait_until(
        lambda: (record := slurm_record(job_id))["JobState"] not in ("RUNNING", "COMPLETING") and record,
        f"SLURM job {job_id} to end",
    )


def send_time_limit_warning(job_id: str) -> None:
    """Send the job's tasks the signal SLURM sends before the time limit (USR2 with hydra/launcher=slurm)."""
    subprocess.run(["scancel", "--signal=USR2", job_id], check=True)


def wait_until(condition: Callable[[], Any], what: str, timeout: float = 300) -> Any:
    """Poll `condition` until it returns something true; fail the test after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if result := condition():
            return result
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


class WarnWhileExiting(Callback):
    """Hydra callback for a job: once the job has finished, SLURM's time-limit warning arrives while it exits.

    The warning is raised at exit (an atexit hook runs after submitit's "Exiting after successful
    completion"), where a job that ends inside the warning window gets it; raising it in the job itself
    makes the moment exact.
    """

    def on_job_end(self, config: Any, job_return: Any, **kwargs: Any) -> None:
        atexit.register(os.kill, os.getpid(), signal.SIGUSR2)
