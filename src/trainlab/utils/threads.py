"""How many threads torch may use in one job, so that parallel jobs do not oversubscribe the cores.

`extras.num_threads` decides: an integer sets it, `null` leaves torch's default, and `auto` (the
default) gives each job its share of the cores when a launcher runs jobs side by side: with
`hydra/launcher=joblib hydra.launcher.n_jobs=N`, cores // N threads each; under submitit, the
job's `cpus_per_task`. A plain run keeps torch's default.
"""

import logging
import os
from collections.abc import Mapping
from typing import Any

import torch
from hydra.core.hydra_config import HydraConfig

from trainlab.errors import ConfigError

log = logging.getLogger(__name__)


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


def threads_per_job(setting: Any, launcher: Mapping[str, Any], cores: int) -> int | None:
    """The thread count `extras.num_threads` asks for under this launcher, or None for torch's default."""
    if setting is None:
        return None
    if isinstance(setting, int) and not isinstance(setting, bool) and setting > 0:
        return setting
    if setting != "auto":
        raise ConfigError(
            f"extras.num_threads={setting!r} is not a thread count; use a positive integer, auto or null."
        )
    if launcher.get("n_jobs") is not None and "joblib" in str(launcher.get("_target_", "")):
        return max(1, cores // parallel_jobs(int(launcher["n_jobs"]), cores))
    if launcher.get("cpus_per_task"):
        return int(launcher["cpus_per_task"])
    return None


def launcher_config() -> Mapping[str, Any]:
    """The Hydra launcher's settings of this job; empty outside Hydra."""
    if not HydraConfig.initialized():
        return {}
    return HydraConfig.get().get("launcher") or {}


def set_torch_threads(extras: Mapping[str, Any] | None) -> None:
    """Apply `extras.num_threads` to torch before any work starts."""
    threads = threads_per_job((extras or {}).get("num_threads", "auto"), launcher_config(), available_cores())
    if threads is not None:
        # joblib's loky workers may already cap threads through environment variables; set it anyway,
        # so the count is the same under every launcher and backend.
        torch.set_num_threads(threads)
        log.info("torch uses %d thread(s) in this job (extras.num_threads).", threads)
