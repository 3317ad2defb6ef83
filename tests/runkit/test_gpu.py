"""The GPU paths on a real CUDA GPU: data placed on the device, bf16, torch.compile, channels-last, DDP over two
GPUs under Hydra (a run and a multirun) and a joblib sweep whose jobs each train on a GPU of their own.

Skipped without CUDA, the DDP and sweep tests also with fewer than 2 GPUs; `make gpu-check` runs them all.
The CPU side of the same code is tested in test_accelerator_options.py, test_distributed.py and test_devices.py.
"""

import math
from pathlib import Path

import lightning.pytorch as pl
import pytest
import torch
from lightning.pytorch.callbacks import Callback

from runkit import building, training
from runkit.checkpoints import load_run
from runkit.runs.reading import read_scalars
from tests.runkit.helpers.config import compose_config
from tests.runkit.helpers.process import run_script
from tests.runkit.helpers.runs import SMALL_CNN, TINY_MLP

GPUS = torch.cuda.device_count() if torch.cuda.is_available() else 0
pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(GPUS == 0, reason="needs a CUDA GPU (torch.cuda.is_available() is False)"),
]
two_gpus = pytest.mark.skipif(GPUS < 2, reason=f"needs 2 CUDA GPUs; this machine has {GPUS}")

ON_ONE_GPU = [*SMALL_CNN, "trainer.accelerator=gpu", "trainer.devices=1", "trainer.max_epochs=1", "logger=none"]
# In the pytest process: no bar and no summary, whose output would only fill the log.
QUIET_CALLBACKS = ["callbacks.progress_bar=null", "callbacks.model_summary=null"]


class Seen(Callback):
    """What the net is given while it trains: where the batches are, and each convolution's input layout and
    output dtype."""

    def __init__(self) -> None:
        self.batch_devices: set[torch.device] = set()
        self.conv_inputs_channels_last: set[bool] = set()
        self.conv_output_dtypes: set[torch.dtype] = set()

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not pl_module.compile_net:  # hooks inside a compiled forward are not what this records
            for conv in convolutions(pl_module):
                conv.register_forward_hook(self.record_conv)

    def record_conv(self, module: torch.nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
        if module.training:
            self.conv_inputs_channels_last.add(inputs[0].is_contiguous(memory_format=torch.channels_last))
            self.conv_output_dtypes.add(output.dtype)

    def on_train_batch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch, batch_idx: int) -> None:
        self.batch_devices.update(tensor.device for tensor in batch)


def convolutions(model: pl.LightningModule) -> list[torch.nn.Conv2d]:
    return [module for module in model.net.modules() if isinstance(module, torch.nn.Conv2d)]


def train_on_gpu(
    overrides: list[str], run_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> tuple[dict[str, float], pl.Trainer, Seen]:
    """train() as trainlab-train runs it on one GPU, with Seen among its callbacks; its metrics, Trainer and Seen."""
    seen, trainers = Seen(), []

    def build_trainer(trainer_cfg, callbacks, loggers) -> pl.Trainer:
        trainers.append(building.build_trainer(trainer_cfg, [*callbacks, seen], loggers))
        return trainers[-1]

    monkeypatch.setattr(training, "build_trainer", build_trainer)
    metrics = training.train(compose_config("train", [*ON_ONE_GPU, *QUIET_CALLBACKS, *overrides], run_dir))
    assert math.isfinite(metrics["train/loss"]) and math.isfinite(metrics["test/loss"]), metrics
    return metrics, trainers[0], seen


def test_the_data_live_on_the_gpu(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _, trainer, seen = train_on_gpu([], tmp_path / "run", monkeypatch)
    assert trainer.strategy.root_device.type == "cuda"
    assert {device.type for device in seen.batch_devices} == {"cuda"}
    # Placed once: the training split itself is on the GPU, so batches are sliced there, never copied over.
    assert {tensor.device.type for tensor in trainer.datamodule.splits["train"]} == {"cuda"}


def test_bf16_trains_in_bf16_on_the_gpu(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if not torch.cuda.is_bf16_supported(including_emulation=False):
        pytest.skip(f"{torch.cuda.get_device_name()} has no native bf16, which trainer=bf16 requires")
    _, trainer, seen = train_on_gpu(["trainer=bf16"], tmp_path / "run", monkeypatch)
    assert trainer.precision == "bf16-mixed"
    assert trainer.strategy.root_device.type == "cuda"
    assert {device.type for device in seen.batch_devices} == {"cuda"}
    assert seen.conv_output_dtypes == {torch.bfloat16}  # autocast computed the convolutions in bf16
    assert seen.conv_inputs_channels_last == {True}  # trainer=bf16 brings channels-last along


def test_channels_last_on_the_gpu(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _, trainer, seen = train_on_gpu(["model.channels_last=true"], tmp_path / "run", monkeypatch)
    weights = [conv.weight for conv in convolutions(trainer.lightning_module)]
    assert len(weights) == 2
    assert all(weight.is_cuda and weight.is_contiguous(memory_format=torch.channels_last) for weight in weights)
    # The second convolution has 8 input channels: only a channels-last batch passes this there.
    assert seen.conv_inputs_channels_last == {True}
    assert seen.conv_output_dtypes == {torch.float32}


@pytest.mark.slow
def test_a_compiled_model_trains_on_the_gpu_like_the_plain_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    plain, _, _ = train_on_gpu([], tmp_path / "plain", monkeypatch)
    compiled, trainer, seen = train_on_gpu(["model.compile=true"], tmp_path / "compiled", monkeypatch)
    assert trainer.lightning_module.compiled_forward is not None  # the forward ran through torch.compile
    assert {device.type for device in seen.batch_devices} == {"cuda"}
    for name in ("val/loss", "test/loss"):  # the same seed: kernels differ, the numbers barely
        assert compiled[name] == pytest.approx(plain[name], rel=1e-2), name


# --- more than one GPU, through the command line ---------------------------------------------------
ON_TWO_GPUS = [*TINY_MLP, "trainer=ddp", "trainer.devices=2", "trainer.max_epochs=2"]
NCCL = "distributed_backend=nccl"  # Lightning's line as the process group forms; CPU DDP (gloo) says gloo


@pytest.mark.slow
@two_gpus
def test_ddp_over_two_gpus(tmp_path: Path) -> None:
    run = tmp_path / "ddp"
    result = run_script("train", [*ON_TWO_GPUS, f"hydra.run.dir={run}"], cwd=tmp_path, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    output = result.stdout + result.stderr
    assert "Device: cuda (" in output and ", 2 processes, " in output
    assert output.count(NCCL) == 1
    assert output.count("Initializing distributed: GLOBAL_RANK: 0, MEMBER: 1/2") == 1
    assert len(read_scalars(run)["test/acc"]) == 1
    assert (run / "train.log").read_text().count("Final metrics:") == 1  # rank 1 logged no line of its own


@pytest.mark.slow
@two_gpus
def test_a_multirun_of_ddp_jobs_over_two_gpus(tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"
    args = ["-m", *ON_TWO_GPUS, "seed=1,2", f"hydra.sweep.dir={sweep}", f"paths.log_dir={tmp_path / 'logs'}"]
    result = run_script("train", args, cwd=tmp_path, timeout=400)
    assert result.returncode == 0, result.stderr[-3000:]
    output = result.stdout + result.stderr
    assert output.count(NCCL) == 2  # each job formed its own process group over the two GPUs
    assert output.count("Initializing distributed: GLOBAL_RANK: 0, MEMBER: 1/2") == 2
    assert not (tmp_path / "logs").exists()  # no extra rank started a run or a sweep of its own
    for job in ("000_seed-1", "001_seed-2"):
        assert len(read_scalars(sweep / job)["test/acc"]) == 1
        assert (sweep / job / "train.log").read_text().count("Final metrics:") == 1


@pytest.mark.slow
@two_gpus
def test_a_joblib_sweep_gives_each_job_its_own_gpu(tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"
    args = ["-m", *TINY_MLP, "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", "trainer=gpu", "seed=1,2"]
    result = run_script("train", [*args, f"hydra.sweep.dir={sweep}"], cwd=tmp_path, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    for job in (0, 1):  # job k looks for a free GPU from GPU k onwards
        folder = sweep / f"00{job}_seed-{job + 1}"
        _, run_cfg = load_run(folder / "checkpoints" / "last.ckpt")
        assert list(run_cfg.trainer.devices) == [job]  # the trainer it trained with
        assert f"This job trains on GPU {job} of {GPUS}" in (folder / "train.log").read_text()
        assert len(read_scalars(folder)["test/acc"]) == 1
    assert sorted(path.name for path in (sweep / ".devices").iterdir()) == ["0.lock", "1.lock"]
