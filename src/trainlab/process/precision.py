"""Whether the hardware a run trains on computes bfloat16 natively, so that bf16 precision is a speed-up."""

from pathlib import Path

import torch

from trainlab.config import ConfigError

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


def check_bf16_hardware(precision: str, device: torch.device, cpuinfo: str | None = None) -> None:
    """Refuse bf16 precision on a device without native bf16 arithmetic, in one line."""
    if not str(precision).startswith("bf16"):
        return
    if device.type == "cuda" and not torch.cuda.is_bf16_supported(including_emulation=False):
        lacking = f"GPU {torch.cuda.get_device_name(device)}"
    elif device.type == "cpu" and cpu_has_bf16(cpuinfo) is False:
        lacking = "CPU (no avx512_bf16, amx_bf16 or bf16 among its flags)"
    else:
        return
    raise ConfigError(
        f"trainer.precision={precision} needs native bfloat16 arithmetic, which this {lacking} lacks: "
        "emulated, it would be slower than 32-bit; use trainer=default (precision 32-true)."
    )
