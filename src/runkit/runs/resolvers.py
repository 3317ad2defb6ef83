"""The configs' own interpolations (a run's and a sweep job's folder name, bf16's channels-last), registered when
`runkit` is imported, before Hydra composes a run."""

import os
from collections.abc import Sequence
from datetime import datetime

from omegaconf import OmegaConf

from runkit.runs.names import job_folder_name, run_folder_name


def run_stamp() -> str:
    """A single run's start time to the microsecond, which begins its folder name: it sorts runs and keeps them apart.

    `srun --ntasks=N trainlab-train ...` starts the same run N times, one DDP rank each, and the N processes
    must share one folder: there the stamp is the day, the SLURM job and the step, which every rank reads alike
    (and the rest of the name comes from the command line, the same for every rank).
    """
    now = datetime.now()
    if int(os.environ.get("SLURM_STEP_NUM_TASKS", "1")) > 1 and "SLURM_STEP_ID" in os.environ:
        return f"{now:%Y-%m-%d}_slurm-{os.environ['SLURM_JOB_ID']}.{os.environ['SLURM_STEP_ID']}"
    return f"{now:%Y-%m-%d_%H-%M-%S_%f}"


def run_folder(overrides: Sequence[str]) -> str:
    """`${run_folder:${hydra.overrides.task}}`: a single run's folder name, its start time then its overrides."""
    return run_folder_name(run_stamp(), list(overrides))


def job_folder(number: int, overrides: Sequence[str], sweep_dir: str) -> str:
    """`${job_folder:${hydra.job.num},${hydra.overrides.task},${hydra.sweep.dir}}`: a sweep job's folder name."""
    return job_folder_name(number, list(overrides), sweep_dir)


# Cached like Hydra's own ${now:}: every read of the run's folder in one process gives the same name.
OmegaConf.register_new_resolver("run_folder", run_folder, use_cache=True, replace=True)
# Not cached: each job's config is its own, and the name depends on the job's number and overrides alone.
OmegaConf.register_new_resolver("job_folder", job_folder, replace=True)


def is_bf16(precision: object) -> bool:
    """Whether a trainer precision computes in bfloat16 (bf16-mixed, bf16-true): the models' channels-last default.

    The CPU's bf16 convolution and max-pooling kernels are fast only on channels-last batches, so a model lays its
    image batches out that way whenever the trainer computes in bf16, and the trainer's config sets nothing else.
    """
    return str(precision).startswith("bf16")


OmegaConf.register_new_resolver("is_bf16", is_bf16, replace=True)
