"""The hardware a run trains on, said once in trainlab's words and checked: Lightning's own lines
(`GPU available: False, used: False`, `TPU available: ...`) are filtered from the console (process/setup.py)."""

import logging
from typing import Any

import torch

from runkit.process.precision import check_bf16_hardware

log = logging.getLogger(__name__)


def check_and_say_hardware(trainer: Any) -> None:
    """Refuse bf16 where the hardware lacks it, and say the device, the processes and the precision (rank 0)."""
    check_bf16_hardware(trainer.precision, trainer.strategy.root_device, warn=trainer.is_global_zero)
    if trainer.is_global_zero:
        log.info(device_line(trainer.strategy.root_device, trainer.world_size, str(trainer.precision)))


def device_line(device: torch.device, processes: int, precision: str) -> str:
    """E.g. `Device: cpu, 1 process, precision 32-true`; on a CPU beside an unused GPU, how to use it."""
    name = f"cuda ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else device.type
    unused = "; a CUDA GPU is here but unused (trainer=gpu trains on it)" if device.type == "cpu" and gpu_here() else ""
    plural = "" if processes == 1 else "es"
    return f"Device: {name}, {processes} process{plural}, precision {precision}{unused}"


def gpu_here() -> bool:
    return torch.cuda.is_available()
