"""Whether the hardware a run trains on computes bfloat16 natively, so that bf16 precision is a speed-up."""

import logging
from pathlib import Path

import torch

from runkit.config import ConfigError

log = logging.getLogger(__name__)

# CPU feature flags (Linux /proc/cpuinfo) of native bf16 arithmetic: x86 AVX512-BF16 and AMX, Arm's BF16.
CPU_BF16_FLAGS = {"avx512_bf16", "amx_bf16", "bf16"}
CPUINFO = Path("/proc/cpuinfo")


def cpu_has_bf16(cpuinfo: str | None = None) -> bool | None:
    """True or False from the CPU's feature flags; None where they cannot be read (not Linux)."""
    if cpuinfo is None:
        if not CPUINFO.is_file():
            return None
        cpuinfo = CPUINFO.read_text()
    flags = {flag for line in cpuinfo.splitlines() if line.startswith(("flags", "Features")) for flag in line.split()}
    return bool(flags & CPU_BF16_FLAGS)


def check_bf16_hardware(precision: str, device: torch.device, cpuinfo: str | None = None, warn: bool = True) -> None:
    """Refuse bf16 precision on a GPU without native bf16, in one line; on such a CPU, warn and go on.

    A GPU without bf16 fails later in torch or Lightning, and less clearly. A CPU emulates it: slower than 32-bit,
    but researchers check a GPU cluster's `trainer=bf16` config on a laptop first, or want bf16 for its memory.
    `warn=False` keeps the warning to one process of several (DDP's rank 0 says it).
    """
    if not str(precision).startswith("bf16"):
        return
    if device.type == "cuda" and not torch.cuda.is_bf16_supported(including_emulation=False):
        raise ConfigError(
            f"trainer.precision={precision} needs native bfloat16 arithmetic, which this GPU "
            f"{torch.cuda.get_device_name(device)} lacks; use trainer=gpu (precision 32-true) or trainer.precision=16-mixed."
        )
    if device.type == "cpu" and cpu_has_bf16(cpuinfo) is False and warn:
        log.warning(
            f"trainer.precision={precision} on a CPU without native bfloat16 (no avx512_bf16, amx_bf16 or bf16 among "
            "its flags): torch emulates it, slower than 32-bit; fine for checking a config, "
            "use trainer=default (precision 32-true) for speed."
        )
