"""What every trainlab LightningModule shares: optimizer and scheduler from config, weight penalty, logging."""

import functools
import inspect
from collections.abc import Callable, Mapping
from typing import Any

import lightning.pytorch as pl
import torch
from hydra.utils import instantiate
from torch import nn
from torchmetrics import MeanMetric, Metric

from trainlab.checkpoints import CONFIG_KEY, config_to_store
from trainlab.config.errors import ConfigError
from trainlab.regularizers import WeightPenalty
from trainlab.trusted_code import Trust, check_trusted

OptimizerFactory = Callable[..., torch.optim.Optimizer]


def built(part: Any) -> Any:
    """A part given as a plain config dict (as load_from_checkpoint passes it) built by Hydra, once the code it
    names is code the project trusts; what Hydra has built already (objects, or the scheduler's DictConfig
    holding its partial) passes as it is."""
    if not isinstance(part, dict):
        return part
    how = "load it with trainlab.load_model(path, trusted_packages=['{}'])"
    check_trusted(part, Trust.of(), "the checkpoint's hyper_parameters", how)
    return instantiate(part, _convert_="all")


Batch = tuple[torch.Tensor, torch.Tensor]


class TrainlabModule(pl.LightningModule):
    """Trains ``net`` on ``loss(net(x), y)`` plus an optional weight penalty.

    ``optimizer`` is a partial waiting for the parameters (``configs/optimizer``); ``scheduler`` is
    Lightning's lr-scheduler dict whose ``scheduler`` entry is a partial waiting for the optimizer
    (``configs/scheduler``). Each part may also come as its plain config, as Lightning's
    ``load_from_checkpoint`` passes it back (see ``remember_config``). Subclasses define the loss and
    the metrics.
    """

    task = "classification"

    def __init__(
        self,
        net: nn.Module | Mapping[str, Any],
        optimizer: OptimizerFactory | Mapping[str, Any] | None = None,
        scheduler: dict[str, Any] | None = None,
        regularizer: WeightPenalty | Mapping[str, Any] | None = None,
        compile: bool = False,
        channels_last: bool = False,
    ) -> None:
        super().__init__()
        self.net = built(net)
        # torch.compile of the net's forward, built on first use; the net itself stays as it is, so
        # checkpoints hold the same weights under the same names with or without compiling.
        self.compile_net = compile
        self.compiled_forward: Callable[[torch.Tensor], torch.Tensor] | None = None
        # Channels-last memory layout for images: faster convolutions where the backend has kernels for it.
        self.channels_last = channels_last
        if channels_last:
            self.net = self.net.to(memory_format=torch.channels_last)
        self.optimizer_factory = built(optimizer)
        self.scheduler_config = dict(built(scheduler)) if scheduler else None
        self.regularizer = built(regularizer)
        # Epoch means of the training loss and penalty. A torchmetrics update costs tens of
        # microseconds per step, where a self.log call costs hundreds (see training_step).
        # nan_strategy="disable": the default looks for NaNs in every update, a wait for the GPU on
        # every step, and leaves them out of the mean; a NaN loss now shows as a NaN epoch mean
        # (and the finite_loss callback stops the run at it).
        self.train_loss = MeanMetric(nan_strategy="disable")
        self.train_penalty = MeanMetric(nan_strategy="disable")
        # The run's composed config (plain containers), saved in every checkpoint so that
        # trainlab-eval can rebuild this model from the checkpoint alone.
        self.run_config: dict[str, Any] | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.channels_last and x.dim() == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        if not self.compile_net:
            return self.net(x)
        if self.compiled_forward is None:
            self.compiled_forward = torch.compile(self.net.forward)
        return self.compiled_forward(x)

    def loss(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        inputs, targets = batch
        outputs = self(inputs)
        data_loss = self.loss(outputs, targets)
        self.train_loss.update(data_loss.detach(), weight=len(targets))
        self.update_train_metrics(outputs.detach(), targets)
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
        """Whether the Trainer writes step values at this batch: every `trainer.log_every_n_steps` steps.

        Step curves are logged only then: each self.log call costs Lightning about 0.3-0.6 ms, on
        every step several percent of a small model's training time, for values never written.
        """
        trainer = self.trainer
        return bool(trainer.fast_dev_run) or (self.steps_done(batch_idx) + 1) % trainer.log_every_n_steps == 0

    def steps_done(self, batch_idx: int) -> int:
        """Optimizer steps taken before this batch: the step Lightning writes this batch's values at."""
        return self.trainer.global_step

    def update_train_metrics(self, outputs: torch.Tensor, targets: torch.Tensor) -> None:
        """Subclasses update their training metrics here (torchmetrics update only; logged at epoch end)."""

    def on_train_epoch_end(self) -> None:
        self.log("train/loss", self.train_loss)
        if self.regularizer is not None:
            self.log("train/penalty", self.train_penalty)
        self.log_train_metrics()

    def log_train_metrics(self) -> None:
        """Subclasses log their epoch-level training metrics here."""

    def evaluate(self, batch: Batch, loss_metric: MeanMetric, score: Metric) -> None:
        """A validation or test step: update the stage's loss and score metrics (logged at the epoch's end)."""
        inputs, targets = batch
        outputs = self(inputs)
        loss_metric.update(self.loss(outputs, targets), weight=len(targets))
        score.update(outputs, targets)

    def stage_metrics(self, stage: str) -> dict[str, Metric]:
        """The metric objects a validation or test epoch logs, by name (`val/loss`, ...); subclasses fill it."""
        return {}

    def log_stage(self, stage: str) -> None:
        # Logged once an epoch, not from every batch: the values are the same epoch means, and each
        # self.log call costs Lightning a fraction of a millisecond per batch.
        self.log_dict(self.stage_metrics(stage), prog_bar=True)

    def on_validation_epoch_end(self) -> None:
        self.log_stage("val")

    def on_test_epoch_end(self) -> None:
        self.log_stage("test")

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

    def remember_config(self, settings: Mapping[str, Any]) -> None:
        """Keep the plain config this module is built from (its keyword arguments as config) as its
        hyperparameters. Lightning saves them in every checkpoint, so ``<Module>.load_from_checkpoint(path)``
        rebuilds the module; plain data, so the checkpoint still loads with weights_only."""
        self.save_hyperparameters(dict(settings), logger=False)  # trainlab writes its own HPARAMS tab

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        if self.run_config is not None:
            checkpoint[CONFIG_KEY] = config_to_store(self.run_config)


def check_one_cycle_warm_up(factory: functools.partial, total_steps: int) -> None:
    """torch's OneCycleLR divides by zero when a phase spans no step: the warm-up (pct_start of the run) ending
    exactly at the first step (0.25 of 4 steps), or lasting the whole run. Said here in one line, with the fix."""
    if factory.func is not torch.optim.lr_scheduler.OneCycleLR:
        return
    pct_start = factory.keywords.get("pct_start", inspect.signature(factory.func).parameters["pct_start"].default)
    if float(pct_start * total_steps) - 1 == 0 or pct_start >= 1:
        raise ConfigError(
            f"scheduler=onecycle cannot warm up over scheduler.scheduler.pct_start={pct_start} of the run's "
            f"{total_steps} steps (torch's OneCycleLR needs each phase to span part of a step or more); "
            f"use another pct_start, e.g. scheduler.scheduler.pct_start=0.3, or train for more steps."
        )
