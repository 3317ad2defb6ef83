"""The same CNN on the same in-memory data, trained three ways: by a hand-written PyTorch loop, through
trainlab's default LightningModule + DataModule + Trainer, and through a bare Lightning Trainer.

The epoch, precision and scaling sections time these fits; each fit returns its times and the
validation accuracy it reached, so that a section can compare what the speed costs.

Each fit trains on one device: the CPU by default, or one CUDA GPU (`accelerator="gpu"` to template_setup
and lightning_floor_fit, `device="cuda"` to hand_written_fit; the epoch section passes its Run's). On a GPU
every time is taken after torch.cuda.synchronize(), so that it counts the kernels queued before it.
"""

import time
from pathlib import Path
from typing import NamedTuple

import lightning.pytorch as pl
import torch
import torch.nn.functional as F
from lightning.pytorch.callbacks import Callback
from omegaconf import DictConfig

from runkit.building import build_callbacks, build_datamodule, build_loggers, build_model, build_trainer
from runkit.config import compose
from trainlab.data.tensor_datamodule import TensorDataModule

EPOCHS = 3  # the first epoch of a fit carries its start-up; the later ones are the steady state


class Fit(NamedTuple):
    """What one fit took: the whole fit, each epoch (validation included), and the last validation accuracy."""

    seconds: float
    epochs: list[float]
    val_acc: float | None  # None where the fit computes none (the bare Lightning module logs nothing)


def template_overrides(num_train: int, batch_size: int, epochs: int = EPOCHS, accelerator: str = "cpu") -> list[str]:
    """The overrides of the default `train` config that the fits train with, on one device of `accelerator`
    ("cpu" or "gpu"; as bench.common.trainer_overrides, which this module does not import: common imports it)."""
    return [
        "extras.print_config=false",
        f"trainer.accelerator={accelerator}",
        "trainer.devices=1",
        f"data.num_train={num_train}",
        "data.num_val=2000",
        f"data.batch_size={batch_size}",
        f"trainer.max_epochs={epochs}",
    ]


def template_setup(
    workdir: Path, num_train: int, batch_size: int, epochs: int = EPOCHS, accelerator: str = "cpu"
) -> tuple[DictConfig, TensorDataModule]:
    """The default `train` config on one device of `accelerator` (the CPU unless told), composed in-process,
    and its data module, set up for fitting (its splits on the CPU: a fit moves them to its device)."""
    cfg = compose("train", template_overrides(num_train, batch_size, epochs, accelerator), workdir / "template")
    datamodule = build_datamodule(cfg.data)
    datamodule.setup("fit")
    return cfg, datamodule


def synchronized_clock(device: torch.device) -> float:
    """time.perf_counter(), once the device has done what was queued on it (a CUDA GPU runs behind Python)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter()


def hand_written_fit(cfg: DictConfig, datamodule: TensorDataModule, bf16: bool = False, device: str = "cpu") -> Fit:
    """EPOCHS epochs of training, each followed by a validation pass, the way one writes it by hand
    (`bf16`: under torch.autocast to bfloat16, as one adds it by hand), on `device` ("cpu" or "cuda"): the net
    and the data are moved there in the first epoch, as the template's fit moves them in its own. The whole
    fit is the sum of its epochs."""
    on = torch.device(device)
    net = build_model(cfg).net
    batch = cfg.data.batch_size
    marks = [synchronized_clock(on)]
    model = net.to(on)
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.optimizer.lr)
    x_train, y_train, x_val, y_val = (t.to(on) for t in (*datamodule.splits["train"], *datamodule.splits["val"]))
    val_acc = 0.0
    for _ in range(EPOCHS):
        model.train()
        order = torch.randperm(len(x_train), device=on)
        for i in range(0, len(order), batch):
            idx = order[i : i + batch]
            with torch.autocast(on.type, dtype=torch.bfloat16, enabled=bf16):
                loss = F.cross_entropy(model(x_train[idx]), y_train[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        model.eval()
        with torch.no_grad(), torch.autocast(on.type, dtype=torch.bfloat16, enabled=bf16):
            correct = sum(  # counted on the device, read once: no wait for the GPU after every batch
                (model(x_val[i : i + batch]).argmax(1) == y_val[i : i + batch]).sum()
                for i in range(0, len(x_val), batch)
            )
        val_acc = int(correct) / len(x_val)
        marks.append(synchronized_clock(on))
    epochs = [end - start for start, end in zip(marks, marks[1:], strict=False)]
    return Fit(sum(epochs), epochs, val_acc)


class EpochClock(Callback):
    """Times each epoch of a fit: from one epoch's start to the next (validation and checkpoints included),
    on a GPU once what was queued there is done."""

    def __init__(self) -> None:
        self.marks: list[float] = []

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.marks.append(synchronized_clock(trainer.strategy.root_device))

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.marks.append(synchronized_clock(trainer.strategy.root_device))

    def epochs(self) -> list[float]:
        return [end - start for start, end in zip(self.marks, self.marks[1:], strict=False)]


def timed_fit(
    trainer: pl.Trainer, model: pl.LightningModule, datamodule: TensorDataModule, clock: EpochClock
) -> tuple[float, list[float]]:
    """(seconds of `trainer.fit` as a whole, seconds of each epoch)."""
    start = time.perf_counter()  # nothing queued yet: the model is still on the CPU
    trainer.fit(model, datamodule=datamodule)
    return synchronized_clock(trainer.strategy.root_device) - start, clock.epochs()


def template_fit(cfg: DictConfig, datamodule: TensorDataModule, precision: str = "32-true") -> Fit:
    """The same epochs through trainlab's default callbacks, TensorBoard logger and checkpointing."""
    clock = EpochClock()
    model, trainer = template_model_and_trainer(cfg, datamodule, clock, precision)
    seconds, epochs = timed_fit(trainer, model, datamodule, clock)
    return Fit(seconds, epochs, float(trainer.callback_metrics["val/acc"]))


def template_model_and_trainer(
    cfg: DictConfig, datamodule: TensorDataModule, callback: Callback, precision: str = "32-true"
) -> tuple[pl.LightningModule, pl.Trainer]:
    """The model and Trainer `cfg` builds (its callbacks and loggers), with `callback` added and this precision."""
    model = build_model(cfg)
    loggers = build_loggers(cfg.logger)
    trainer_cfg = cfg.trainer.copy()
    trainer_cfg.precision = precision
    return model, build_trainer(trainer_cfg, [*build_callbacks(cfg.callbacks, loggers), callback], loggers)


class BareModule(pl.LightningModule):
    """The least a LightningModule can do: the same net, loss and optimizer, nothing logged."""

    def __init__(self, net: torch.nn.Module, lr: float) -> None:
        super().__init__()
        self.net, self.lr = net, lr

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        inputs, targets = batch
        return F.cross_entropy(self.net(inputs), targets)

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        inputs, targets = batch
        (self.net(inputs).argmax(1) == targets).sum()  # the validation's work, with nothing kept of it

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.parameters(), lr=self.lr)


def lightning_floor_fit(cfg: DictConfig, datamodule: TensorDataModule, accelerator: str = "cpu") -> Fit:
    """Lightning's own cost, for reference: a bare Trainer (no logger, callbacks, progress bar or checkpoints),
    on one device of `accelerator`."""
    model = BareModule(build_model(cfg).net, cfg.optimizer.lr)
    clock = EpochClock()
    trainer = bare_trainer(EPOCHS, accelerator, clock, Path(cfg.paths.output_dir) / "floor")
    seconds, epochs = timed_fit(trainer, model, datamodule, clock)
    return Fit(seconds, epochs, None)


def bare_trainer(epochs: int, accelerator: str, callback: Callback, folder: Path) -> pl.Trainer:
    """A Lightning Trainer with nothing of its own switched on (logger, checkpoints, progress bar, summary,
    sanity check), on one device of `accelerator`, with this one callback."""
    return pl.Trainer(
        max_epochs=epochs,
        accelerator=accelerator,
        devices=1,
        logger=False,
        callbacks=[callback],
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        default_root_dir=str(folder),
    )
