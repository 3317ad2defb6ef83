"""One GPU per job when a launcher runs a sweep's jobs side by side on one machine.

With `hydra/launcher=joblib hydra.launcher.n_jobs=N` on a machine with several GPUs, every job would
otherwise train on GPU 0 (trainer.devices=1), or each would start DDP over all GPUs (devices=auto).
Instead, a job whose trainer asks for one GPU claims one: an exclusive, non-blocking lock on
`<sweep dir>/.devices/<index>.lock`, held while the job runs, and `trainer.devices=[index]` (a list of
CUDA indices, which Lightning accepts; CUDA_VISIBLE_DEVICES cannot move a worker whose CUDA is already
initialised by an earlier job).

A claim ends when its process ends (the kernel drops the lock) or when the next job starts in the same
process: joblib's loky workers run job after job, so each job first releases the previous job's claim.
With more jobs at once than GPUs nobody waits: the jobs beyond the count share GPUs, evenly, and each says
so in one line. Waiting would stall, since an idle loky worker keeps its last claim until its next job.
"""

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from runkit.process.mode import available_cores, in_multirun, parallel_jobs

try:
    import fcntl
except ImportError:  # Windows: no flock, and no claiming
    fcntl = None

log = logging.getLogger(__name__)

LOCK_FOLDER = ".devices"
# What `trainer.accelerator` and `trainer.devices` say when a job wants one GPU. `devices=auto` counts:
# Lightning would give each side-by-side job every GPU, so every job would run DDP over all of them.
GPU_ACCELERATORS = ("gpu", "cuda", "auto")
ONE_DEVICE = (1, "1", "auto")


@dataclass
class DeviceClaim:
    """A GPU index held by this process; `slot` > 0 when it shares the GPU with other jobs."""

    index: int
    slot: int
    handle: IO[str]


# This process's claim, by process id: a forked child must not release its parent's claim.
CLAIMS: dict[int, DeviceClaim] = {}


def lock_path(folder: Path, index: int, slot: int) -> Path:
    return folder / (f"{index}.lock" if slot == 0 else f"{index}-{slot}.lock")


def try_lock(path: Path) -> IO[str] | None:
    """An open handle holding an exclusive lock on `path`, or None when another handle holds it."""
    handle = open(path, "a")  # noqa: SIM115 (the open file is the lock: it outlives this function)
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        return None
    handle.truncate(0)
    handle.write(f"{os.getpid()}\n")  # for whoever looks into the folder: the process holding the GPU
    handle.flush()
    return handle


def claim_device(device_count: int, folder: Path, first: int = 0) -> DeviceClaim:
    """The first free GPU index, trying `first` onwards; once all are held, a second job on each GPU, then a third.

    The search always ends: each claimant holds at most one lock, so some slot is free.
    """
    folder.mkdir(parents=True, exist_ok=True)
    slot = 0
    while True:
        for offset in range(device_count):
            index = (first + offset) % device_count
            handle = try_lock(lock_path(folder, index, slot))
            if handle is not None:
                return DeviceClaim(index, slot, handle)
        slot += 1


def release(claim: DeviceClaim) -> None:
    claim.handle.close()  # closing the only handle drops the lock


def release_previous_claim() -> None:
    """Free the GPU an earlier job of this process claimed (a loky worker is reused for job after job)."""
    claim = CLAIMS.pop(os.getpid(), None)
    if claim is not None:
        release(claim)


def asks_for_one_gpu(trainer: Mapping[str, Any]) -> bool:
    accelerator, devices = trainer.get("accelerator", "auto"), trainer.get("devices", "auto")
    return str(accelerator) in GPU_ACCELERATORS and devices in ONE_DEVICE and (trainer.get("num_nodes") or 1) == 1


def side_by_side_jobs() -> int:
    """How many jobs the sweep's launcher runs at once: joblib's n_jobs (as setup.py reads it), else 1."""
    launcher = HydraConfig.get().get("launcher") or {}
    if launcher.get("n_jobs") is None or "joblib" not in str(launcher.get("_target_", "")):
        return 1
    return parallel_jobs(int(launcher["n_jobs"]), available_cores())


def give_job_its_own_gpu(cfg: DictConfig) -> None:
    """In a sweep whose jobs run side by side, set `trainer.devices` to a GPU no other running job holds."""
    release_previous_claim()
    if fcntl is None or not in_multirun() or not asks_for_one_gpu(cfg.trainer):
        return
    if side_by_side_jobs() < 2:
        return
    import torch

    count = torch.cuda.device_count()
    if count < 2:
        return
    hydra_cfg = HydraConfig.get()
    claim = claim_device(count, Path(hydra_cfg.sweep.dir) / LOCK_FOLDER, first=int(hydra_cfg.job.num) % count)
    CLAIMS[os.getpid()] = claim
    cfg.trainer.devices = [claim.index]
    log.info("This job trains on GPU %d of %d (trainer.devices=[%d]).", claim.index, count, claim.index)
    if claim.slot > 0:
        log.warning(
            "GPU %d is shared by %d jobs: hydra.launcher.n_jobs=%s runs more jobs at once than the %d GPUs; "
            "set hydra.launcher.n_jobs=%d for one GPU per job.",
            *(claim.index, claim.slot + 1, hydra_cfg.launcher.n_jobs, count, count),
        )
