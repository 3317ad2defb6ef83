"""Per-process set-up: which Hydra mode and DDP rank this process runs in, torch threads, GPU probes, DDP ranks.

`set_up_process(cfg)` is the one call a run makes; the rest says why each step is needed.
"""

import logging
import os
import signal
import sys
import threading
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, open_dict, read_write

from trainlab.config import ConfigError
from trainlab.slurm import time_limit_signal

log = logging.getLogger(__name__)

# Where DDP launchers (Lightning's, torchrun, SLURM, LSF) put a process's rank; Lightning reads the same
# variables in this order. Reading them here spares importing Lightning (seconds) before a config check.
RANK_VARIABLES = ("RANK", "LOCAL_RANK", "SLURM_PROCID", "JSM_NAMESPACE_RANK")


def in_multirun() -> bool:
    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


def process_rank() -> int:
    """This process's DDP rank, 0 when it was not started as one of several processes."""
    return int(next((os.environ[key] for key in RANK_VARIABLES if key in os.environ), "0"))


def set_up_process(cfg: DictConfig) -> None:
    """Everything a training process sets before its run starts."""
    log_each_line_once()
    quiet_other_ranks()
    launch_ranks_as_this_job()
    set_torch_threads(cfg.get("extras"))
    stop_gpu_probes_without_gpus()


# --- the console ---------------------------------------------------------------------------------
# Messages of Lightning's that a trainlab user cannot act on, matched narrowly: by logger and text.
UNACTIONABLE_LOGS = {
    "lightning.pytorch.utilities.rank_zero": ("💡 Tip:",),
    "lightning.pytorch.loggers.mlflow": ("Experiment with name",),  # "... not found. Creating it."
    # In every SLURM job: SLURM's time limit is handled by trainlab and submitit (slurm.py).
    "lightning.pytorch.trainer.connectors.signal_connector": ("SLURM auto-requeueing enabled",),
}


def actionable(record: logging.LogRecord) -> bool:
    """False for a record whose logger and opening words are listed in UNACTIONABLE_LOGS."""
    return not str(record.msg).startswith(UNACTIONABLE_LOGS.get(record.name, ()))


UNACTIONABLE_WARNINGS = [
    r"`isinstance\(treespec, LeafSpec\)` is deprecated",  # Lightning's own internals
    # On any machine with SLURM installed (a login node), in every run that SLURM did not start: trainlab's
    # way onto SLURM is hydra/launcher=slurm (or srun), not prefixing the local command with srun.
    r"The `srun` command is available on your system but is not used",
]


def log_each_line_once() -> None:
    """Each log line once on the console, and no advertising.

    The `lightning` package gives its logger a console handler of its own and also passes every
    record up to the root logger, where Hydra's handlers print and save it: each line appeared twice.
    With Hydra's handlers in place, Lightning's own is removed.
    """
    lightning_logger = logging.getLogger("lightning")
    if logging.getLogger().handlers:
        for handler in list(lightning_logger.handlers):
            if type(handler) is logging.StreamHandler:
                lightning_logger.removeHandler(handler)
    for name in UNACTIONABLE_LOGS:
        logging.getLogger(name).addFilter(actionable)  # added once: a logger keeps one copy of a filter
    for message in UNACTIONABLE_WARNINGS:
        warnings.filterwarnings("ignore", message=message)


# --- interruptions --------------------------------------------------------------------------------
class RunInterrupted(BaseException):
    """SIGINT (Ctrl-C), SIGTERM (what SLURM and Kubernetes send before they kill) or SLURM's time-limit warning
    (see slurm.py) stopped the run.

    A BaseException, like KeyboardInterrupt, so that no `except Exception` on the way mistakes it for a failure.
    `handler_before`: the signal's handler before the run started (submitit's, for the time-limit warning).
    """

    def __init__(self, signum: int, handler_before: Any = None, warned_by_slurm: bool = False) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum
        self.warned_by_slurm = warned_by_slurm  # SLURM's time-limit warning, which submitit goes on to handle
        self.signal_name = signal.Signals(signum).name
        self.exit_code = 128 + signum  # what a shell reports for a process ended by this signal: 130, 143
        self.handler_before = handler_before


@contextmanager
def interruptible() -> Iterator[None]:
    """Within this block SIGINT, SIGTERM and SLURM's time-limit warning raise RunInterrupted, once; the previous
    handlers come back after.

    Checkpoints are written atomically (checkpoints.AtomicCheckpointIO), so stopping at any point
    leaves last.ckpt whole. During training Lightning composes its own SIGTERM handler with this one.
    """
    if threading.current_thread() is not threading.main_thread():  # only the main thread receives signals
        yield
        return
    warning = time_limit_signal()
    signals = [signal.SIGINT, signal.SIGTERM, *filter(None, [warning])]

    def stop(signum: int, frame: Any) -> None:
        for name in signals:  # a second signal (Ctrl-C again, SLURM's SIGTERM on requeue) must not break the clean-up
            signal.signal(name, signal.SIG_IGN)
        raise RunInterrupted(signum, previous[signum], warned_by_slurm=signum == warning)

    previous = {name: signal.signal(name, stop) for name in signals}
    try:
        yield
    finally:
        for name, handler in previous.items():
            signal.signal(name, handler)


# --- threads ---------------------------------------------------------------------------------------
# `extras.num_threads` decides how many threads torch may use in one job, so that parallel jobs do not
# oversubscribe the cores: an integer sets it, `null` keeps torch's default, and `auto` (the default)
# gives each job its share of the cores when a launcher runs jobs side by side: with
# `hydra/launcher=joblib hydra.launcher.n_jobs=N`, cores // N threads each; under submitit, the job's
# `cpus_per_task`. A plain run keeps torch's default.


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


def set_torch_threads(extras: Mapping[str, Any] | None) -> None:
    """Apply `extras.num_threads` to torch before any work starts."""
    import torch

    launcher = (HydraConfig.get().get("launcher") or {}) if HydraConfig.initialized() else {}
    threads = threads_per_job((extras or {}).get("num_threads", "auto"), launcher, available_cores())
    if threads is not None:
        # joblib's loky workers may already cap threads through environment variables; set it anyway,
        # so the count is the same under every launcher and backend.
        torch.set_num_threads(threads)
        log.info("torch uses %d thread(s) in this job (extras.num_threads).", threads)


# --- GPU probes ------------------------------------------------------------------------------------
# Lightning sets PYTORCH_NVML_BASED_CUDA_CHECK=1 when it is imported, so that looking for GPUs never
# initialises CUDA before processes fork. torch's Adam and AdamW look for an accelerator on every step;
# with a CUDA build of torch and no NVIDIA driver, that check tries to load the missing driver library
# on every step and never caches the answer. Without a GPU there is no CUDA
# state to protect, so torch's own check is put back.
NVML_CHECK = "PYTORCH_NVML_BASED_CUDA_CHECK"


def stop_gpu_probes_without_gpus() -> None:
    import torch

    if os.environ.get(NVML_CHECK) == "1" and torch.cuda.device_count() == 0:
        del os.environ[NVML_CHECK]


# --- DDP under Hydra -------------------------------------------------------------------------------
# Lightning starts ranks 1..N-1 by running the same command again (`sys.argv`) with
# `hydra.run.dir=<HydraConfig run.dir>` and `hydra.output_subdir=null` added, so every rank writes into
# rank 0's folder and only rank 0 saves `.hydra/`. Two things need help: every rank's log records would
# reach the run's log file (each line N times); and under `-m`, `sys.argv` holds the whole sweep and
# `run.dir` is not the job's folder, so each extra rank would start a sweep of its own, while the jobs
# run one after another in one process whose process group and launcher variables outlive each job.
MULTIRUN_FLAGS = ("-m", "--multirun")

# Lightning's launcher writes these into the launching process's environment; a second job in the
# same process would read LOCAL_RANK as "started by an external launcher" and wait for ranks that
# never come. Their values from before the first job are put back at the start of every job.
LAUNCHER_VARIABLES = ("MASTER_ADDR", "MASTER_PORT", "NODE_RANK", "LOCAL_RANK", "WORLD_SIZE")
ENVIRONMENT_AT_START = {name: os.environ.get(name) for name in LAUNCHER_VARIABLES}
# The command line as the user typed it: a multirun's jobs rewrite sys.argv for DDP's extra ranks.
COMMAND_AT_START = list(sys.argv)


def quiet_other_ranks() -> None:
    """Ranks other than 0 pass only warnings and errors to the log handlers (file and console)."""
    if process_rank() > 0:
        for handler in logging.getLogger().handlers:
            handler.setLevel(logging.WARNING)


def launch_ranks_as_this_job() -> None:
    """In a multirun job, make DDP's extra ranks rerun this one job, in this job's folder.

    Rewrites what Lightning's launcher reads: the command line becomes this job's own overrides
    (no `-m`, no sweep lists) and Hydra's run.dir becomes the job's output folder.
    """
    if not in_multirun():
        return
    import torch.distributed

    if torch.distributed.is_available() and torch.distributed.is_initialized():
        # The previous job's process group: its other ranks have exited, so this job needs a new one.
        torch.distributed.destroy_process_group()
    for name, value in ENVIRONMENT_AT_START.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    hydra_cfg = HydraConfig.get()
    flags = [arg for arg in sys.argv[1:] if arg.startswith("-") and arg not in MULTIRUN_FLAGS]
    sys.argv = [sys.argv[0], *flags, *hydra_cfg.overrides.task]
    with read_write(hydra_cfg), open_dict(hydra_cfg):
        hydra_cfg.run.dir = hydra_cfg.runtime.output_dir


# --- processes that share a file ------------------------------------------------------------------
@contextmanager
def exclusive_lock(path: Path | None) -> Iterator[None]:
    """Hold an exclusive lock on `path` (created if missing) for the block; no lock for None or on Windows."""
    try:
        import fcntl
    except ImportError:  # Windows: parallel sweeps there run through launchers of their own
        fcntl = None
    if path is None or fcntl is None:
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
