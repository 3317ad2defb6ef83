"""Which Hydra mode and which DDP rank this process runs in, and how many jobs run beside it on how many cores."""

import os

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode

# Where DDP launchers (Lightning's, torchrun, SLURM, LSF) put a process's rank; Lightning reads the same
# variables in this order. Reading them here spares importing Lightning (seconds) before a config check.
RANK_VARIABLES = ("RANK", "LOCAL_RANK", "SLURM_PROCID", "JSM_NAMESPACE_RANK")


def in_multirun() -> bool:
    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


def process_rank() -> int:
    """This process's DDP rank, 0 when it was not started as one of several processes."""
    return int(next((os.environ[key] for key in RANK_VARIABLES if key in os.environ), "0"))


def available_cores() -> int:
    """Cores this process may run on (respects CPU affinity, e.g. taskset or a cluster's cgroup)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def parallel_jobs(n_jobs: int, cores: int) -> int:
    """How many jobs joblib runs at once for its n_jobs: negative counts back from all cores (-1 = all)."""
    if n_jobs < 0:
        return max(1, cores + 1 + n_jobs)
    return max(1, min(n_jobs, cores))
