"""Without GPUs, Lightning's NVML-based GPU check (repeated by Adam on every step) is switched off."""

import os

import lightning  # noqa: F401  (sets PYTORCH_NVML_BASED_CUDA_CHECK=1, as in every run)
import pytest
import torch

from runkit.process.setup import NVML_CHECK, stop_gpu_probes_without_gpus


# Both counts on every machine: the test gives the GPU count, rather than taking the one this machine has.
@pytest.mark.parametrize("gpus", [0, 1])
def test_nvml_check_is_dropped_only_where_there_is_no_gpu(gpus: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(NVML_CHECK, "1")
    monkeypatch.setattr(torch.cuda, "device_count", lambda: gpus)
    stop_gpu_probes_without_gpus()
    assert (NVML_CHECK in os.environ) == (gpus > 0)
