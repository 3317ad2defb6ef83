"""Stops CPU-only machines from probing for GPUs on every optimizer step.

Lightning sets PYTORCH_NVML_BASED_CUDA_CHECK=1 when it is imported, so that looking for GPUs never
initialises CUDA before processes fork. torch's Adam and AdamW look for an accelerator on every
step; with a CUDA build of torch on a machine without an NVIDIA driver, that check tries to load
the missing driver library each time (about 70 us a step on our 2-core machine) and never caches
the answer. Where there is no GPU there is no CUDA state to protect, so torch's own check is put back.
"""

import os

import torch

NVML_CHECK = "PYTORCH_NVML_BASED_CUDA_CHECK"


def stop_gpu_probes_without_gpus() -> None:
    if os.environ.get(NVML_CHECK) == "1" and torch.cuda.device_count() == 0:
        del os.environ[NVML_CHECK]
