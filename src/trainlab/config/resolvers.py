"""The configs' own interpolations, registered when `trainlab.config` is imported, before Hydra composes a run."""

import os
from datetime import datetime

from omegaconf import OmegaConf


def run_stamp() -> str:
    """A single run's folder name: its start time to the microsecond, which sorts runs and keeps them apart.

    `srun --ntasks=N trainlab-train ...` starts the same run N times, one DDP rank each, and the N processes
    must share one folder: there the name is the day, the SLURM job and the step, which every rank reads alike.
    """
    now = datetime.now()
    if int(os.environ.get("SLURM_STEP_NUM_TASKS", "1")) > 1 and "SLURM_STEP_ID" in os.environ:
        return f"{now:%Y-%m-%d}_slurm-{os.environ['SLURM_JOB_ID']}.{os.environ['SLURM_STEP_ID']}"
    return f"{now:%Y-%m-%d_%H-%M-%S_%f}"


# Cached like Hydra's own ${now:}: every read of the run's folder in one process gives the same name.
OmegaConf.register_new_resolver("run_stamp", run_stamp, use_cache=True, replace=True)


def is_bf16(precision: object) -> bool:
    """Whether a trainer precision computes in bfloat16 (bf16-mixed, bf16-true): the models' channels-last default.

    The CPU's bf16 convolution and max-pooling kernels are fast only on channels-last batches, so a model lays its
    image batches out that way whenever the trainer computes in bf16, and the trainer's config sets nothing else.
    """
    return str(precision).startswith("bf16")


OmegaConf.register_new_resolver("is_bf16", is_bf16, replace=True)
