"""Per-process set-up: the console, torch threads and GPU probes, the allocator (memory.py), and DDP's
ranks (ddp.py).

`set_up_process(cfg)` is the one call a run makes; the rest says why each step is needed.
"""

import logging
import os
import warnings
from collections.abc import Mapping
from typing import Any

from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from runkit.config import ConfigError
from runkit.process.ddp import launch_ranks_as_this_job, quiet_other_ranks
from runkit.process.devices import give_job_its_own_gpu
from runkit.process.memory import keep_freed_memory
from runkit.process.mode import available_cores, parallel_jobs

log = logging.getLogger(__name__)


def set_up_process(cfg: DictConfig) -> None:
    """Everything a training process sets before its run starts."""
    log_each_line_once()
    quiet_other_ranks()
    launch_ranks_as_this_job()
    set_torch_threads(cfg.get("extras"))
    stop_gpu_probes_without_gpus()
    keep_freed_memory()
    give_job_its_own_gpu(cfg)


# --- the console ---------------------------------------------------------------------------------
# Messages of Lightning's that a trainlab user cannot act on, matched narrowly: by logger and text.
UNACTIONABLE_LOGS = {
    # The model summary is one of trainlab's callbacks (callbacks.model_summary), so Lightning adds none of its own.
    "lightning.pytorch.utilities.rank_zero": (
        "💡 Tip:",
        # Said in trainlab's words, once, when the run starts (process/hardware.py).
        "GPU available:",
        "TPU available:",
        "HPU available:",
        "Trainer already configured with model summary callbacks",
        # Said again by the next line: "Loaded model weights from ..." (testing) or "Restored all states from ...".
        "Restoring states from the checkpoint path at",
    ),
    "lightning.pytorch.loggers.mlflow": ("Experiment with name",),  # "... not found. Creating it."
    # In every SLURM job: SLURM's time limit is handled by trainlab and submitit (slurm.py).
    "lightning.pytorch.trainer.connectors.signal_connector": ("SLURM auto-requeueing enabled",),
    # TensorBoard's reader, as trainlab reads a finished run's final metrics back from its event files.
    "tensorboard": ("Directory watcher advancing from", "No path found after"),
}


def actionable(record: logging.LogRecord) -> bool:
    """False for a record whose logger and opening words are listed in UNACTIONABLE_LOGS."""
    return not str(record.msg).startswith(UNACTIONABLE_LOGS.get(record.name, ()))


UNACTIONABLE_WARNINGS = [
    r"`isinstance\(treespec, LeafSpec\)` is deprecated",  # Lightning's own internals
    # On any machine with SLURM installed (a login node), in every run that SLURM did not start: trainlab's
    # way onto SLURM is hydra/launcher=slurm (or srun), not prefixing the local command with srun.
    r"The `srun` command is available on your system but is not used",
    # A fresh run never writes into a folder holding checkpoints (runs.folder.GuardRunFolder): the folder is
    # not empty only when a run resumes there, as asked.
    r"Checkpoint directory .* exists and is not empty",
    # trainlab's curves are epoch means, logged whatever the number of batches; only the step curves thin out.
    r"The number of training batches \(\d+\) is smaller than the logging interval",
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


# --- threads ---------------------------------------------------------------------------------------
# `extras.num_threads` decides how many threads torch may use in one job, so that parallel jobs do not
# oversubscribe the cores: an integer sets it, `null` keeps torch's default, and `auto` (the default)
# gives each job its share of the cores when a launcher runs jobs side by side: with
# `hydra/launcher=joblib hydra.launcher.n_jobs=N`, cores // N threads each; under submitit, the job's
# `cpus_per_task`. A plain run keeps torch's default.


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
