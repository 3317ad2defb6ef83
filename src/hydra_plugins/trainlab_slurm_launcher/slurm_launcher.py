"""The launcher: submit a sweep's jobs as one SLURM array through submitit, wait for each, report how it ended.

Jobs are submitted and run as hydra-submitit-launcher's own SlurmLauncher runs them (this class extends
it: the job is the same pickled call, requeued by submitit at the time limit). What differs is the waiting:

- A job is done when its result file exists, or when `squeue` no longer lists it as pending or running.
  submitit asks `sacct` instead, which fails on every poll on a cluster without accounting (with three
  warnings each time) and so never learns that a job ended without a result: its sweep would wait forever.
- A job that ended without a result (killed at its time limit, cancelled, out of memory, out of requeues)
  has its status.yaml brought up to date and is counted, and the sweep goes on, as for a job that failed
  by its own error: trainlab's jobs return None for a failure, and never fail the whole sweep.
"""

import logging
import os
import shlex
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hydra.core.singleton import Singleton
from hydra.core.utils import JobReturn, JobStatus, filter_overrides
from omegaconf import open_dict

from hydra_plugins.hydra_submitit_launcher import submitit_launcher

log = logging.getLogger(__name__)

# Parameters that submitit's executor takes under their own name; the rest are SLURM's, prefixed `slurm_`.
SHARED_PARAMETERS = {
    "timeout_min",
    "cpus_per_task",
    "gpus_per_node",
    "tasks_per_node",
    "mem_gb",
    "nodes",
    "name",
    "stderr_to_stdout",
}
# States in which SLURM may still run a job (a requeued job passes through REQUEUED and PENDING).
UNFINISHED_STATES = {
    "PENDING",
    "CONFIGURING",
    "RUNNING",
    "COMPLETING",
    "REQUEUED",
    "REQUEUE_FED",
    "REQUEUE_HOLD",
    "RESIZING",
    "SUSPENDED",
    "SIGNALING",
    "STAGE_OUT",
    "STOPPED",
    "RESV_DEL_HOLD",
}
# How a job that SLURM ended without a result is recorded: stopped from outside (resumable), else failed.
STOPPED_FROM_OUTSIDE = {"TIMEOUT", "CANCELLED", "PREEMPTED", "NODE_FAIL", "DEADLINE"}
QUERY_EVERY_S = (2, 30)  # squeue: after 2 s, then twice as long each time, up to 30 s between queries


class SlurmLauncher(submitit_launcher.SlurmLauncher):
    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:

        assert self.config is not None
        sweep_dir = Path(str(self.config.hydra.sweep.dir))
        sweep_dir.mkdir(parents=True, exist_ok=True)
        if "mode" in self.config.hydra.sweep:  # hydra.sweep.mode: the sweep folder's permissions, in octal
            os.chmod(sweep_dir, int(str(self.config.hydra.sweep.mode), 8))
        executor = self.executor()
        log.info("Submitting %d jobs to SLURM; their output goes to %s", len(job_overrides), sweep_dir)
        jobs_by_number = {initial_job_idx + index: list(overrides) for index, overrides in enumerate(job_overrides)}
        for number, overrides in jobs_by_number.items():
            log.info("\t#%d : %s", number, " ".join(filter_overrides(overrides)))
        state = Singleton.get_state()
        calls = [(overrides, "hydra.sweep.dir", n, f"job_id_for_{n}", state) for n, overrides in jobs_by_number.items()]
        jobs = executor.map_array(self, *zip(*calls, strict=True))
        ended_without_result = wait_for(jobs)
        return [
            self.job_return(job, overrides, number, ended_without_result.get(job.job_id))
            for job, (number, overrides) in zip(jobs, jobs_by_number.items(), strict=True)
        ]

    def executor(self) -> Any:
        """submitit's executor with this launcher's settings: partition, time limit, GPUs, ..."""
        import submitit

        executor = submitit.AutoExecutor(
            cluster="slurm",
            folder=self.params["submitit_folder"],
            slurm_max_num_timeout=self.params["max_num_timeout"],
        )
        executor.update_parameters(**self.executor_parameters())
        return executor

    def submit_workers(self, command: list[str], count: int) -> str:
        """A search's `count` workers as one SLURM array, each running `command` with these settings; returns
        the array's job id. Nothing waits for them: the sweep's command may end, and they go on."""
        from runkit.sweep_workers import run_worker

        jobs = self.executor().map_array(run_worker, [command] * count)
        return str(jobs[0].job_id).partition("_")[0]

    def executor_parameters(self) -> dict[str, Any]:
        """The launcher's settings as submitit's executor names them."""
        own = {"submitit_folder", "max_num_timeout"}
        return {
            key if key in SHARED_PARAMETERS else f"slurm_{key}": value
            for key, value in self.params.items()
            if key not in own
        }

    def job_return(self, job: Any, overrides: list[str], number: int, slurm_state: str | None) -> JobReturn:
        """The job's own return, or, for a job that ended without one, a None result (a failed job's)."""
        if slurm_state is None:
            try:
                return job.task(0).result()
            except Exception as error:  # raised outside trainlab's run, e.g. while the job's config was loaded
                problem = f"{type(error).__name__}: {str(error).strip().splitlines()[-1]}"
        else:
            problem = f"SLURM ended it as {slurm_state} before it returned"
        folder = self.job_folder(overrides, number)
        status = record_ending(folder, overrides, slurm_state, problem)
        log.warning("Job #%d (SLURM job %s): %s; its status is %s: %s", number, job.job_id, problem, status, folder)
        ended = JobReturn(overrides=overrides, status=JobStatus.COMPLETED)
        ended.return_value = None
        return ended

    def job_folder(self, overrides: list[str], number: int) -> Path:
        """The job's run folder, as the job itself names it."""
        assert self.hydra_context is not None and self.config is not None
        sweep_config = self.hydra_context.config_loader.load_sweep_config(self.config, overrides)
        with open_dict(sweep_config.hydra.job):
            sweep_config.hydra.job.num = number
        return Path(str(sweep_config.hydra.sweep.dir)) / str(sweep_config.hydra.sweep.subdir)


def wait_for(jobs: Sequence[Any]) -> dict[str, str]:
    """Wait until every job has a result file or has left SLURM's queue; returns how those without a result ended."""
    pending = {job.job_id: job for job in jobs}
    ended: dict[str, str] = {}
    gone_once: set[str] = set()
    interval, next_query = QUERY_EVERY_S[0], time.monotonic() + QUERY_EVERY_S[0]
    while pending:
        for job_id in [job_id for job_id, job in pending.items() if job.task(0).paths.result_pickle.exists()]:
            del pending[job_id]
        if pending and time.monotonic() >= next_query:
            states = queue_states() or {job_id: "UNKNOWN" for job_id in pending}  # squeue failed: ask again later
            for job_id in list(pending):
                state = states.get(job_id, "ENDED")  # no longer listed: ended long enough ago to be forgotten
                if state in UNFINISHED_STATES | {"UNKNOWN"}:
                    continue
                # A result file can appear a moment after the job's state changes (network file systems).
                if job_id in gone_once:
                    ended[job_id] = state
                    del pending[job_id]
                gone_once.add(job_id)
            interval = min(interval * 2, QUERY_EVERY_S[1])
            next_query = time.monotonic() + (QUERY_EVERY_S[0] if gone_once & pending.keys() else interval)
        if pending:
            time.sleep(1)
    return ended


def queue_states() -> dict[str, str] | None:
    """Each of this user's jobs that SLURM still knows (array tasks one by one) and its state; None if squeue failed."""
    command = ["squeue", "--me", "--noheader", "--array", "--states=all", "--format=%i|%T"]
    try:
        listing = subprocess.run(command, capture_output=True, text=True, timeout=60, check=True).stdout
    except (OSError, subprocess.SubprocessError) as error:
        log.debug("%s failed (%s); asking again later", shlex.join(command), error)
        return None
    return dict(line.split("|", 1) for line in listing.split() if "|" in line)


def record_ending(folder: Path, overrides: list[str], slurm_state: str | None, problem: str) -> str:
    """Bring the job's status.yaml up to date unless the job recorded its own ending; returns the status."""
    from runkit.runs.commands import sweep_resume_command
    from runkit.runs.status import FAILED, INTERRUPTED, RUNNING, read_status, write_status

    recorded = read_status(folder)
    if recorded["status"] not in (RUNNING, "unknown"):
        return recorded["status"]
    if slurm_state in STOPPED_FROM_OUTSIDE:  # like a run stopped by a signal: the sweep's command resumes it
        write_status(folder, INTERRUPTED, slurm_state=slurm_state, resume=sweep_resume_command(), overrides=overrides)
        return INTERRUPTED
    write_status(folder, FAILED, error=problem, slurm_state=slurm_state, overrides=overrides)
    return FAILED
