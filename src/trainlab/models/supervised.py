"""A supervised LightningModule: ``net`` trained on ``loss(net(x), y)``, with ``metrics`` logged for every stage.

Every part is chosen in config (configs/model/*.yaml): the net, the loss, the metrics (any torchmetrics
metric, by name), the optimizer and its schedule, an optional weight penalty. So a new loss or metric is a
config line, not a subclass.
"""

import functools
import inspect
from collections.abc import Callable, Mapping
from typing import Any

import lightning.pytorch as pl
import torch
from torch import nn
from torchmetrics import MeanMetric, Metric, MetricCollection

Batch = tuple[torch.Tensor, torch.Tensor]
OptimizerFactory = Callable[..., torch.optim.Optimizer]
Penalty = Callable[[nn.Module], torch.Tensor]


class SupervisedModule(pl.LightningModule):
    """Logs ``{stage}/loss`` and ``{stage}/<name>`` for each of ``metrics``, at every epoch's end.

    ``optimizer`` is a partial waiting for the parameters (``configs/optimizer``); ``scheduler`` is Lightning's
    lr-scheduler dict whose ``scheduler`` entry is a partial waiting for the optimizer (``configs/scheduler``).
    """

    def __init__(
        self,
        net: nn.Module,
        loss: nn.Module,
        optimizer: OptimizerFactory | None = None,
        metrics: Mapping[str, Metric] | None = None,
        scheduler: Mapping[str, Any] | None = None,
        regularizer: Penalty | None = None,
        compile: bool = False,
        channels_last: bool = False,
    ) -> None:
        super().__init__()
        self.net = net.to(memory_format=torch.channels_last) if channels_last else net
        self.loss = loss
        self.optimizer_factory = optimizer
        self.scheduler_config = dict(scheduler) if scheduler else None
        self.regularizer = regularizer or None  # an empty config (regularizer=none) is none
        # torch.compile of the net's forward, built on first use; the net itself stays as it is, so checkpoints
        # hold the same weights under the same names with or without compiling.
        self.compile_net = compile
        self.compiled_forward: Callable[[torch.Tensor], torch.Tensor] | None = None
        self.channels_last = channels_last  # faster convolutions where the backend has kernels for it
        # Metric objects keep per-epoch sums and synchronise them across processes, so epoch values are those of
        # the whole split, even under DDP. nan_strategy="disable": the default looks for NaNs in every update, a
        # wait for the GPU on every step; a NaN loss now shows as a NaN mean (finite_loss stops the run at it).
        metrics = MetricCollection(dict(metrics or {}), compute_groups=False)
        self.train_metrics = metrics.clone(prefix="train/")
        self.val_metrics = metrics.clone(prefix="val/")
        self.test_metrics = metrics.clone(prefix="test/")
        self.train_loss = MeanMetric(nan_strategy="disable")
        self.val_loss = MeanMetric(nan_strategy="disable")
        self.test_loss = MeanMetric(nan_strategy="disable")
        self.train_penalty = MeanMetric(nan_strategy="disable")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.channels_last and x.dim() == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        if not self.compile_net:
            return self.net(x)
        if self.compiled_forward is None:
            self.compiled_forward = torch.compile(self.net.forward)
        return self.compiled_forward(x)

    def training_step(self, batch: Batch, batch_idx: int) -> torch.Tensor:
        inputs, targets = batch
        outputs = self(inputs)
        data_loss = self.loss(outputs, targets)
        # Epoch means by torchmetrics: an update costs tens of microseconds, a self.log call hundreds.
        self.train_loss.update(data_loss.detach(), weight=len(targets))
        self.train_metrics.update(outputs.detach(), targets)
        logged = self.is_logging_step(batch_idx)
        if self.regularizer is None:
            if logged:
                self.log("train/loss_step", data_loss, prog_bar=True)
            return data_loss
        penalty = self.regularizer(self.net)
        self.train_penalty.update(penalty.detach())
        if logged:
            self.log_dict({"train/loss_step": data_loss, "train/penalty_step": penalty}, prog_bar=True)
        return data_loss + penalty

    def is_logging_step(self, batch_idx: int) -> bool:
        """Whether the Trainer writes step values at this batch: every `trainer.log_every_n_steps` steps. Each
        self.log call costs Lightning about 0.3-0.6 ms, several percent of a small model's step."""
        trainer = self.trainer
        return bool(trainer.fast_dev_run) or (self.steps_done(batch_idx) + 1) % trainer.log_every_n_steps == 0

    def steps_done(self, batch_idx: int) -> int:
        """Optimizer steps taken before this batch: the step Lightning writes this batch's values at."""
        return self.trainer.global_step

    def on_train_epoch_end(self) -> None:
        self.log("train/loss", self.train_loss)
        if self.regularizer is not None:
            self.log("train/penalty", self.train_penalty)
        self.log_dict(self.train_metrics)

    def evaluate(self, batch: Batch, loss: MeanMetric, metrics: MetricCollection) -> None:
        """A validation or test step: update the stage's loss and metrics (logged at the epoch's end)."""
        inputs, targets = batch
        outputs = self(inputs)
        loss.update(self.loss(outputs, targets), weight=len(targets))
        metrics.update(outputs, targets)

    def validation_step(self, batch: Batch, batch_idx: int) -> None:
        self.evaluate(batch, self.val_loss, self.val_metrics)

    def test_step(self, batch: Batch, batch_idx: int) -> None:
        self.evaluate(batch, self.test_loss, self.test_metrics)

    def predict_step(self, batch: Batch, batch_idx: int) -> torch.Tensor:
        return self(batch[0])

    # Logged once an epoch, not from every batch: the values are the same epoch means.
    def on_validation_epoch_end(self) -> None:
        self.log_dict({"val/loss": self.val_loss, **self.val_metrics}, prog_bar=True)

    def on_test_epoch_end(self) -> None:
        self.log_dict({"test/loss": self.test_loss, **self.test_metrics}, prog_bar=True)

    def configure_optimizers(self) -> Any:
        # Frozen parameters stay out: fine-tuning callbacks add them as a new group when they unfreeze them.
        optimizer = self.optimizer_factory(params=[p for p in self.parameters() if p.requires_grad])
        if self.scheduler_config is None:
            return optimizer
        config = dict(self.scheduler_config)
        config["scheduler"] = self.build_scheduler(config["scheduler"], optimizer)
        return {"optimizer": optimizer, "lr_scheduler": config}

    def build_scheduler(self, factory: Callable[..., Any], optimizer: torch.optim.Optimizer) -> Any:
        # Schedules stepped per batch (one-cycle) need the run's length; fill it in when left null.
        if isinstance(factory, functools.partial) and factory.keywords.get("total_steps", 0) is None:
            total_steps = int(self.trainer.estimated_stepping_batches)
            check_one_cycle_warm_up(factory, total_steps)
            factory = functools.partial(factory, total_steps=total_steps)
        return factory(optimizer=optimizer)


def check_one_cycle_warm_up(factory: functools.partial, total_steps: int) -> None:
    """torch's OneCycleLR divides by zero when a phase spans no step: the warm-up (pct_start of the run) ending
    exactly at the first step (0.25 of 4 steps), or lasting the whole run. Said here in one line, with the fix."""
    if factory.func is not torch.optim.lr_scheduler.OneCycleLR:
        return
    pct_start = factory.keywords.get("pct_start", inspect.signature(factory.func).parameters["pct_start"].default)
    if float(pct_start * total_steps) - 1 == 0 or pct_start >= 1:
        raise ValueError(
            f"scheduler=onecycle cannot warm up over scheduler.scheduler.pct_start={pct_start} of the run's "
            f"{total_steps} steps (torch's OneCycleLR needs each phase to span part of a step or more); "
            f"use another pct_start, e.g. scheduler.scheduler.pct_start=0.3, or train for more steps."
        )
