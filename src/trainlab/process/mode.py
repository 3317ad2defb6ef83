"""Which Hydra mode and which DDP rank this process runs in."""

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
