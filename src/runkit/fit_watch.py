"""What runkit watches inside the researcher's fit, through Lightning's hooks alone: checks that need the built
model or Trainer, where the run stands when memory runs out, and what it reports when the fit ends."""

import logging
from typing import Any

import lightning.pytorch as pl
from lightning.pytorch.callbacks import Callback

from runkit.callbacks.optuna_trial import raise_if_pruned
from runkit.checkpoints import check_architecture
from runkit.process.hardware import check_and_say_hardware

log = logging.getLogger(__name__)

PHASES = {"data": "building the data", "fit": "training", "test": "testing"}


class FitWatch(Callback):
    """Lightning calls every callback's setup right after the datamodule's and before it restores a checkpoint:
    the resumed checkpoint's architecture and the hardware's bf16 are checked there, and memory that runs out
    before it ran out while the data were built."""

    def __init__(self, resumed: dict[str, Any] | None, ckpt_path: str | None) -> None:
        self.resumed, self.ckpt_path = resumed, ckpt_path
        self.phase = "data"
        self.checked = False
        self.fit_metrics: dict[str, float] = {}

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        self.phase = stage if stage in PHASES else "fit"
        if self.checked:
            return
        self.checked = True
        if self.resumed is not None:
            check_architecture(self.resumed, pl_module, self.ckpt_path)
        check_and_say_hardware(trainer)

    def on_test_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.phase = "test"

    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        report_early_stop(trainer)
        self.fit_metrics = {name: float(value) for name, value in trainer.callback_metrics.items()}  # before testing
        raise_if_pruned(trainer)  # a trial the search's pruner stopped ends here, untested

    def doing(self) -> str:
        return PHASES[self.phase]


def report_early_stop(trainer: pl.Trainer) -> None:
    """One line when early stopping ended the fit before max_epochs, and why."""
    for callback in trainer.early_stopping_callbacks:
        if callback.stopped_epoch > 0:
            log.info(
                "Stopped early after epoch %d of %d: %s did not improve for %d epochs (best %.4f).",
                callback.stopped_epoch + 1,
                trainer.max_epochs,
                callback.monitor,
                callback.patience,
                float(callback.best_score),
            )
