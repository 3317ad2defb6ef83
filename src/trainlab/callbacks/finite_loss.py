"""Stops training at the first NaN or infinite loss, before its gradients reach the weights.

Lightning's EarlyStopping(check_finite=True) looks only at the monitored validation metric,
after a whole epoch of training on broken weights; this checks every training step.
"""

from pathlib import Path

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import Callback, ModelCheckpoint


class NonFiniteLossError(ValueError):
    """The training loss became NaN or infinite: a user-fixable problem (learning rate, data), not a crash."""


class StopOnNonFiniteLoss(Callback):
    def __init__(self) -> None:
        self.batch_idx = 0  # the batch being trained, as Lightning hands it to every callback

    def on_train_batch_start(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: object, batch_idx: int
    ) -> None:
        self.batch_idx = batch_idx

    def on_before_backward(self, trainer: pl.Trainer, pl_module: pl.LightningModule, loss: torch.Tensor) -> None:
        if torch.isfinite(loss).all():
            return
        saved = [path for c in trainer.checkpoint_callbacks for path in (c.best_model_path, c.last_model_path) if path]
        latest = [path for path in saved if Path(path).stem == ModelCheckpoint.CHECKPOINT_NAME_LAST]
        kept = f"; the last good checkpoint {latest[0]} is untouched" if latest else ""
        raise NonFiniteLossError(
            f"The training loss became {loss.item()} at step {trainer.global_step} (epoch {trainer.current_epoch + 1}, "
            f"batch {self.batch_idx + 1}, counted from 1): the learning rate is likely too high or the data hold "
            f"NaN/inf values; lower optimizer.lr or check the data{kept}."
        )
