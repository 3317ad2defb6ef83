"""The GPU-ready paths, run on the CPU: data placed on the device once, torch.compile and channels-last."""

import os
import shutil
import sys
from pathlib import Path

import pytest
import torch

from runkit.building import build_datamodule, build_model, build_trainer
from runkit.training import train
from tests.runkit.helpers.config import compose_config
from tests.runkit.helpers.runs import SMALL_CNN
from trainlab.data.placement import DATA_SHARE_OF_FREE_MEMORY, place

# The meta device stands in for an accelerator: tensors move there without taking memory.
DEVICE = torch.device("meta")


def split() -> tuple[torch.Tensor, torch.Tensor]:
    return torch.zeros(100, 1, 28, 28), torch.zeros(100, dtype=torch.long)


def size_of(tensors: tuple[torch.Tensor, ...]) -> int:
    return sum(t.nelement() * t.element_size() for t in tensors)


def test_data_that_fit_move_to_the_device_once() -> None:
    tensors = split()
    free = int(size_of(tensors) / DATA_SHARE_OF_FREE_MEMORY) + 1
    placed = place(tensors, DEVICE, free_bytes=free)
    assert [t.device for t in placed] == [DEVICE, DEVICE]
    assert place(placed, DEVICE, free_bytes=0) is placed  # already there: nothing moves again


def test_data_that_do_not_fit_stay_on_the_host() -> None:
    tensors = split()
    placed = place(tensors, DEVICE, free_bytes=size_of(tensors))  # half of it is the most data may take
    assert all(a is b for a, b in zip(placed, tensors, strict=True))


def test_on_the_cpu_the_data_are_not_copied(run_dir: Path) -> None:
    """Under a CPU Trainer the batches are sliced from the very tensors the datamodule loaded."""
    cfg = compose_config("train", [*SMALL_CNN, "debug=fdr"], run_dir)
    datamodule = build_datamodule(cfg.data)
    datamodule.setup()
    loaded = datamodule.splits["train"]
    datamodule.trainer = build_trainer(cfg.trainer, callbacks=[], loggers=[])
    assert datamodule.trainer.strategy.root_device == torch.device("cpu")
    tensors = datamodule.train_dataloader().tensors
    assert all(a is b for a, b in zip(tensors, loaded, strict=True))


def test_channels_last_gives_the_same_outputs(run_dir: Path) -> None:
    cfg = compose_config("train", SMALL_CNN, run_dir)
    plain = build_model(cfg)
    cfg.model.channels_last = True
    channels_last = build_model(cfg)
    channels_last.load_state_dict(plain.state_dict())
    conv = next(module for module in channels_last.net.modules() if isinstance(module, torch.nn.Conv2d))
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)
    images = torch.rand(8, 1, 28, 28)
    with torch.no_grad():
        assert torch.allclose(channels_last(images), plain(images), atol=1e-5)
    assert list(channels_last.state_dict()) == list(plain.state_dict())


# The C++ compiler inductor builds CPU kernels with, as torch/_inductor/config.py picks it (cpp.cxx).
CXX = os.environ.get("CXX", "clang++" if sys.platform == "darwin" else "g++")


@pytest.mark.slow
@pytest.mark.skipif(
    shutil.which(CXX) is None, reason=f"torch.compile on the CPU needs a C++ compiler; {CXX} is not found"
)
def test_a_compiled_model_trains_like_the_plain_one(tmp_path: Path) -> None:
    """torch.compile (inductor, on the CPU) on a short run: the same metrics, the same checkpoint names."""
    overrides = [*SMALL_CNN, "trainer.max_epochs=1", "callbacks=none"]
    plain = train(compose_config("train", overrides, tmp_path / "plain"))
    compiled = train(compose_config("train", [*overrides, "model.compile=true"], tmp_path / "compiled"))
    for name in ("val/loss", "test/loss", "test/acc"):
        assert compiled[name] == pytest.approx(plain[name], rel=1e-3, abs=1e-4), name
