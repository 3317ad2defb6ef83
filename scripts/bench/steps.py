"""Section `steps`: the template's training step on the MNIST recipe against a hand-written one, interleaved step
by step, so that both see the same machine.

Inside one in-process fit of `experiment=mnist_cnn` (two epochs on MNIST-format synthetic digits), a callback runs
one hand-written training step after each of the template's: bench/hand_loop.py's net, Adam and one-cycle
schedule, on the template's own batch. It times that step; the template's step is the time from one batch's
start to the next one's, less the hand-written step run inside it (the first batch of each epoch, which follows
the sanity check or a validation, is left out). Epoch-level pairs of whole fits swing by a third on a busy
machine; step-level pairs hold within a few percent, so this is the section that measures the fit loop's cost.
The hand-written step reuses the template's batch: slicing it from the data (about 0.1 ms) counts only for the
template.

The same again around a bare Lightning Trainer (bench.fits.BareModule: the same net and Adam, no schedule, metrics,
logging, checkpoints or callbacks), which parts Lightning's own loop from what trainlab adds to it.
Entries: the median step of each (ms), the median of the steps' own ratios with their spread, and how many steps
were paired. CPU only.
"""

import time
from pathlib import Path

import lightning.pytorch as pl
import torch
import torch.nn.functional as F
from lightning.pytorch.callbacks import Callback
from omegaconf import DictConfig

from bench import hand_loop
from bench.common import Results, Run, median_of, paired_ratio, trainer_overrides
from bench.fits import BareModule, bare_trainer, template_model_and_trainer
from bench.whole_process import Sizes, write_synthetic_digits
from trainlab.building import build_datamodule
from trainlab.config import compose
from trainlab.data.tensor_datamodule import TensorDataModule

SIZES, QUICK_SIZES = Sizes(25_600, 1_000, 1_000), Sizes(2_560, 512, 512)  # 100 and 10 steps of 256 an epoch
EPOCHS = 2


class HandStepBeside(Callback):
    """After each of the fit's training steps, one hand-written step on the same batch; both steps timed."""

    def __init__(self, total_steps: int) -> None:
        torch.manual_seed(0)
        self.net = hand_loop.build_net().to(memory_format=torch.channels_last)
        self.optimizer = torch.optim.Adam(self.net.parameters(), lr=hand_loop.PEAK_LR, betas=hand_loop.BETAS)
        self.schedule = torch.optim.lr_scheduler.OneCycleLR(
            self.optimizer,
            hand_loop.PEAK_LR,
            total_steps=total_steps,
            pct_start=hand_loop.PCT_START,
            cycle_momentum=False,
        )
        self.batch_started: float | None = None
        self.hand_step_s = 0.0
        self.hand: list[float] = []  # seconds of each hand-written step
        self.fit: list[float] = []  # seconds of each of the fit's steps, the hand-written one inside it left out

    def on_train_batch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: object, i: int) -> None:
        now = time.perf_counter()
        if i > 0 and self.batch_started is not None:
            self.fit.append(now - self.batch_started - self.hand_step_s)
            self.hand.append(self.hand_step_s)
        self.batch_started = now

    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: object, batch: object, i: int
    ) -> None:
        images, labels = batch
        start = time.perf_counter()
        self.net.train()
        loss = F.cross_entropy(self.net(hand_loop.channels_last(images)), labels)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        self.schedule.step()
        self.hand_step_s = time.perf_counter() - start


class ChannelsLastBareModule(BareModule):
    """BareModule with the recipe's input layout, as the template's module and the hand-written step have it."""

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        inputs, targets = batch
        return super().training_step((hand_loop.channels_last(inputs), targets), batch_idx)


def measure(run: Run) -> Results:
    """The template's fit, then the bare Trainer's, each with the hand-written step beside it."""
    sizes = QUICK_SIZES if run.quick else SIZES
    data_dir = write_synthetic_digits(run.workdir / "step_digits", sizes)
    overrides = [
        "experiment=mnist_cnn",
        f"data.data_dir={data_dir}",
        "data.download=false",
        f"data.num_val={sizes.val}",
        f"trainer.max_epochs={EPOCHS}",
        "extras.print_config=false",
        *trainer_overrides("cpu"),
    ]
    cfg = compose("train", overrides, run.workdir / "steps")
    datamodule = build_datamodule(cfg.data)
    datamodule.setup("fit")
    total_steps = EPOCHS * -(-len(datamodule.splits["train"][0]) // cfg.data.batch_size)
    template = template_steps(cfg, datamodule, HandStepBeside(total_steps))
    bare = bare_steps(cfg, datamodule, HandStepBeside(total_steps), run.workdir / "steps_bare")
    return {"steps": {"device": "cpu", "images": len(datamodule.splits["train"][0]), **template, **bare}}


def template_steps(cfg: DictConfig, datamodule: TensorDataModule, beside: HandStepBeside) -> Results:
    model, trainer = template_model_and_trainer(cfg, datamodule, beside, cfg.trainer.precision)
    trainer.fit(model, datamodule=datamodule)
    return summed_up("template", beside)


def bare_steps(cfg: DictConfig, datamodule: TensorDataModule, beside: HandStepBeside, folder: Path) -> Results:
    model = ChannelsLastBareModule(hand_loop.build_net().to(memory_format=torch.channels_last), cfg.optimizer.lr)
    trainer = bare_trainer(EPOCHS, "cpu", beside, folder)
    trainer.fit(model, datamodule=datamodule)
    return summed_up("bare_lightning", beside)


def summed_up(who: str, beside: HandStepBeside) -> Results:
    """The median steps (ms) of `who` and of the hand-written steps beside it, and the paired ratio of their steps."""
    return {
        f"{who}_step_ms": round(1000 * median_of(beside.fit), 2),
        f"hand_step_beside_{who}_ms": round(1000 * median_of(beside.hand), 2),
        f"paired_ratio_{who}_over_hand": paired_ratio(beside.fit, beside.hand),
        f"{who}_steps_paired": len(beside.fit),
    }
