"""Section `steps`: the template's training step on the MNIST recipe against a hand-written one, interleaved step
by step, so that both see the same machine; and where each step's milliseconds go.

Inside one in-process fit of `experiment=mnist_cnn` (two epochs on MNIST-format synthetic digits), a callback runs
one hand-written training step after each of the template's: bench/hand_loop.py's net, Adam and one-cycle
schedule, on the template's own batch. It times that step; the template's step is the time from one batch's
start to the next one's, less the hand-written step run inside it (the first batch of each epoch, which follows
the sanity check or a validation, is left out). Epoch-level pairs of whole fits swing by a third on a busy
machine; step-level pairs hold within a few percent, so this is the section that measures the fit loop's cost.
The hand-written step reuses the template's batch: slicing it from the data (about 0.2 ms) counts only for the
template.

The same again around a bare Lightning Trainer running the template's own LightningModule (built from the same
config: its step is the template's, without the run's callbacks, loggers and trainlab around it), and around two
bare Lightning Trainers (bench.fits.BareModule: the same net and Adam, no schedule,
metrics, logging, checkpoints or callbacks): one with Lightning's automatic optimization, as the template has it,
and one with manual optimization (the module calls zero_grad, manual_backward and step itself). They part
Lightning's own loop from what trainlab adds to it, and the optimization loop's share from the batch loop's.

Each step is split into phases by Lightning's hooks, the hand-written step's alike (medians, ms):
  to_backward      batch start to backward: the forward pass and the loss (and, in a Trainer, the training
                   step's hooks, its result's bookkeeping and zero_grad; the template's also its training
                   metrics' updates);
  backward         loss.backward();
  optimizer        backward's end to the batch's end: the optimizer's and the schedule's steps (and the
                   hooks around them);
  between_batches  one batch's end to the next one's start: the batch-end hooks, logging, fetching the next
                   batch (none in the hand-written step, which reuses the template's batch).
Entries, for each of the three: the median step (ms), the median of the steps' own ratios with their spread,
the phases of both, and how many steps were paired. CPU only.
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
from runkit.building import build_datamodule, build_model
from runkit.config import compose
from trainlab.data.tensor_datamodule import TensorDataModule

SIZES, QUICK_SIZES = Sizes(25_600, 1_000, 1_000), Sizes(2_560, 512, 512)  # 100 and 10 steps of 256 an epoch
EPOCHS = 2
PHASES = ("to_backward", "backward", "optimizer", "between_batches")
Phases = dict[str, float]


class HandStepBeside(Callback):
    """After each of the fit's training steps, one hand-written step on the same batch; both steps timed, phase by
    phase (see the module's docstring)."""

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
        self.marks: dict[str, float] = {}  # this batch's moments, by the hook that took them
        self.last_hand: Phases = {}
        self.hand: list[Phases] = []  # each hand-written step's phases, in seconds
        self.fit: list[Phases] = []  # each of the fit's steps' phases, the hand-written step inside it left out

    def on_train_batch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: object, i: int) -> None:
        now = time.perf_counter()
        if i > 0 and "batch_end" in self.marks:
            self.fit.append(self.fit_phases(now))
            self.hand.append(self.last_hand)
        self.marks = {"batch_start": now}

    def on_before_backward(self, trainer: pl.Trainer, pl_module: pl.LightningModule, loss: torch.Tensor) -> None:
        self.marks["backward"] = time.perf_counter()

    def on_after_backward(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.marks["optimizer"] = time.perf_counter()

    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: object, batch: object, i: int
    ) -> None:
        self.marks["batch_end"] = time.perf_counter()
        images, labels = batch
        self.last_hand = self.hand_step(images, labels)
        self.marks["hand_end"] = time.perf_counter()

    def hand_step(self, images: torch.Tensor, labels: torch.Tensor) -> Phases:
        """bench/hand_loop.py's training step on this batch; its phases."""
        self.net.train()
        start = time.perf_counter()
        loss = F.cross_entropy(self.net(hand_loop.channels_last(images)), labels)
        self.optimizer.zero_grad(set_to_none=True)
        backward = time.perf_counter()
        loss.backward()
        optimizer = time.perf_counter()
        self.optimizer.step()
        self.schedule.step()
        end = time.perf_counter()
        # It reuses the fit's batch: no fetching between batches.
        return {
            "to_backward": backward - start,
            "backward": optimizer - backward,
            "optimizer": end - optimizer,
            "between_batches": 0.0,
        }

    def fit_phases(self, next_batch_start: float) -> Phases:
        """The phases of the fit's step that has just ended (its batch-end time less the hand-written step)."""
        m = self.marks
        return {
            "to_backward": m["backward"] - m["batch_start"],
            "backward": m["optimizer"] - m["backward"],
            "optimizer": m["batch_end"] - m["optimizer"],
            "between_batches": next_batch_start - m["hand_end"],
        }


class ChannelsLastBareModule(BareModule):
    """BareModule with the recipe's input layout, as the template's module and the hand-written step have it."""

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        inputs, targets = batch
        return super().training_step((hand_loop.channels_last(inputs), targets), batch_idx)


class ManualBareModule(ChannelsLastBareModule):
    """The same under manual optimization: what any LightningModule's step costs at least in Lightning's loop."""

    def __init__(self, net: torch.nn.Module, lr: float) -> None:
        super().__init__(net, lr)
        self.automatic_optimization = False

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        optimizer = self.optimizers()
        loss = super().training_step(batch, batch_idx)
        optimizer.zero_grad()
        self.manual_backward(loss)
        optimizer.step()
        return loss


def measure(run: Run) -> Results:
    """The template's fit, then the bare Trainers', each with the hand-written step beside it."""
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
    results = {"device": "cpu", "images": len(datamodule.splits["train"][0])}
    results |= template_steps(cfg, datamodule, HandStepBeside(total_steps))
    # The template's own LightningModule in a bare Trainer: what the run's callbacks, loggers and trainlab add to it.
    same_module = build_model(cfg)
    results |= bare_steps(
        "bare_lightning_same_module", same_module, datamodule, HandStepBeside(total_steps), run.workdir / "steps_same"
    )
    for who, module in (("bare_lightning", ChannelsLastBareModule), ("bare_lightning_manual", ManualBareModule)):
        model = module(hand_loop.build_net().to(memory_format=torch.channels_last), cfg.optimizer.lr)
        results |= bare_steps(who, model, datamodule, HandStepBeside(total_steps), run.workdir / f"steps_{who}")
    return {"steps": results}


def template_steps(cfg: DictConfig, datamodule: TensorDataModule, beside: HandStepBeside) -> Results:
    model, trainer = template_model_and_trainer(cfg, datamodule, beside, cfg.trainer.precision)
    trainer.fit(model, datamodule=datamodule)
    return summed_up("template", beside)


def bare_steps(
    who: str, model: pl.LightningModule, datamodule: TensorDataModule, beside: HandStepBeside, folder: Path
) -> Results:
    trainer = bare_trainer(EPOCHS, "cpu", beside, folder)
    trainer.fit(model, datamodule=datamodule)
    return summed_up(who, beside)


def summed_up(who: str, beside: HandStepBeside) -> Results:
    """The median steps (ms) of `who` and of the hand-written steps beside it, the paired ratio of their steps,
    and the median of each phase of both."""
    fit, hand = ([sum(phases.values()) for phases in steps] for steps in (beside.fit, beside.hand))
    return {
        f"{who}_step_ms": round(1000 * median_of(fit), 2),
        f"hand_step_beside_{who}_ms": round(1000 * median_of(hand), 2),
        f"paired_ratio_{who}_over_hand": paired_ratio(fit, hand),
        f"{who}_phases_ms": median_phases(beside.fit),
        f"hand_phases_beside_{who}_ms": median_phases(beside.hand),
        f"{who}_steps_paired": len(fit),
    }


def median_phases(steps: list[Phases]) -> Phases:
    """Each phase's median over the steps, in ms."""
    return {phase: round(1000 * median_of([step[phase] for step in steps]), 3) for phase in PHASES}
