"""Where a split's tensors live during training: on the accelerator itself when they fit.

Batches sliced from tensors already on the GPU cost no host-to-device copy. Data too large for
the device's free memory stays on the host in pinned (page-locked) memory, from which Lightning's
non-blocking copies overlap with computation.
"""

import logging

import torch

log = logging.getLogger(__name__)

# The share of the device's free memory the data may take: the rest is for the model, its
# activations and the optimizer state.
DATA_SHARE_OF_FREE_MEMORY = 0.5


def place(tensors: tuple[torch.Tensor, ...], device: torch.device, free_bytes: int | None = None) -> tuple:
    """The tensors on `device` if they fit in DATA_SHARE_OF_FREE_MEMORY of its free memory (`free_bytes`, read
    from the device when not given), else where they are, pinned when the device is a CUDA GPU."""
    if device.type == "cpu" or all(t.device == device for t in tensors):
        return tensors
    size = sum(t.nelement() * t.element_size() for t in tensors)
    free = free_memory(device) if free_bytes is None else free_bytes
    if size <= DATA_SHARE_OF_FREE_MEMORY * free:
        return tuple(t.to(device) for t in tensors)
    log.info(
        "Data of %.0f MB do not fit on %s (%.0f MB free); batches are copied from the host.",
        size / 1e6,
        device,
        free / 1e6,
    )
    if device.type == "cuda":
        return tuple(t.pin_memory() for t in tensors)
    return tensors


def free_memory(device: torch.device) -> int:
    """Free memory of an accelerator in bytes (0 where it cannot be read)."""
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    if device.type == "mps":
        return max(0, torch.mps.recommended_max_memory() - torch.mps.driver_allocated_memory())
    return 0
