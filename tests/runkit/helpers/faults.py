"""Faults the machine causes, brought about on purpose: a small disk that fills, a GPU that runs out of memory."""

import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import lightning.pytorch as pl
import torch


@contextmanager
def small_disk(folder: Path, size: str = "4m") -> Iterator[Path]:
    """A tmpfs of `size` mounted on `folder` for the block (root only): a disk that really fills."""
    folder.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)], check=True)
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=True)


@contextmanager
def read_only_mount(folder: Path, fill: Callable[[Path], object] = lambda _: None) -> Iterator[Path]:
    """A tmpfs mounted on `folder` for the block (root only), holding what `fill` writes there, then remounted
    read-only: a real read-only file system, as a shared data set on a cluster often is."""
    folder.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", str(folder)], check=True)
    try:
        fill(folder)
        subprocess.run(["mount", "-o", "remount,ro", str(folder)], check=True)
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=True)


def can_mount() -> bool:
    """Whether small_disk works here: tried, since root in a container usually may not mount (no CAP_SYS_ADMIN)."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0 or shutil.which("mount") is None:
        return False
    with tempfile.TemporaryDirectory() as folder:
        mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", folder], capture_output=True)
        if mounted.returncode != 0:
            return False
        subprocess.run(["umount", folder], check=True)
    return True


def fill_disk(folder: Path, leave: int) -> None:
    """Write a file that leaves `leave` bytes free on `folder`'s file system."""
    free = shutil.disk_usage(folder).free
    with open(folder / "filler", "wb") as file:
        file.write(b"\0" * max(0, free - leave))


class GpuRunsOutOfMemory(pl.Callback):
    """Raises what torch's CUDA allocator raises when a batch does not fit, at the first training batch."""

    def on_train_batch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch, batch_idx: int) -> None:
        raise torch.OutOfMemoryError(
            "CUDA out of memory. Tried to allocate 2.00 GiB. GPU 0 has a total capacity of 79.11 GiB of which "
            "1.02 GiB is free. Of the allocated memory 76.50 GiB is allocated by PyTorch."
        )


class CrashAtFirstBatch(pl.Callback):
    """An unexpected error (a bug, say) at the first training batch, when `crash` is true."""

    def __init__(self, crash: bool) -> None:
        self.crash = crash

    def on_train_batch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch, batch_idx: int) -> None:
        if self.crash:
            raise RuntimeError("something unexpected broke")


class InterruptBeforeTraining(pl.Callback):
    """Ctrl-C at the moment Lightning sets the fit up, before the first batch: as a user who changes their mind."""

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        os.kill(os.getpid(), signal.SIGINT)


class InterruptWhileTestingOnce(pl.Callback):
    """SIGTERM at the first test batch, once: the run's fit has finished, its test has not. `done` is the file
    that says it was sent, so that the run's own resume command, which names this callback too, goes through."""

    def __init__(self, done: str) -> None:
        self.done = Path(done)

    def on_test_batch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch, batch_idx, *_) -> None:
        if not self.done.exists():
            self.done.touch()
            os.kill(os.getpid(), signal.SIGTERM)


class FillDiskAtEpoch(pl.Callback):
    """Fills `folder`'s file system to the last byte when the given training epoch (counted from 0) starts."""

    def __init__(self, folder: str, epoch: int = 1) -> None:
        self.folder, self.epoch = Path(folder), epoch

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.current_epoch == self.epoch:
            fill_disk(self.folder, leave=0)


class GpuRunsOutOfMemoryOnRank(GpuRunsOutOfMemory):
    """As GpuRunsOutOfMemory, on one DDP rank only. The others go on to the next all-reduce, where gloo tells them
    the rank is gone; with `others_hang`, they sleep instead, as a rank waiting in an NCCL all-reduce does."""

    def __init__(self, rank: int, others_hang: bool = False) -> None:
        self.rank, self.others_hang = rank, others_hang

    def on_train_batch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch, batch_idx: int) -> None:
        if trainer.global_rank == self.rank:
            super().on_train_batch_start(trainer, pl_module, batch, batch_idx)
        elif self.others_hang:
            time.sleep(600)


class StatusBecomesAFolder(pl.Callback):
    """When testing ends, a folder takes status.yaml's place: the run's record can no longer be written."""

    def __init__(self, run_dir: str) -> None:
        self.status = Path(run_dir) / "status.yaml"

    def on_test_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.status.unlink()
        self.status.mkdir()
