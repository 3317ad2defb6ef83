"""Gradient descent written out by hand: theta <- theta - alpha * grad J(theta).

The same regression as `model=linear` (same loss, metrics and logging), but the update is done here in plain
tensor code instead of by a ``torch.optim`` optimizer, so the formula can be read in the code. With full-batch
data (``data.batch_size`` at least the training set) every step is exact gradient descent on the objective J.
"""

import logging
from typing import Any

import torch

from trainlab.models.regression import RegressionModule
from trainlab.models.supervised import Batch

log = logging.getLogger(__name__)


class GradientDescentRegression(RegressionModule):
    """Regression trained by explicit gradient descent with step size ``lr``."""

    def __init__(self, *args, lr: float = 0.1, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.lr = lr
        # Lightning leaves backward and the update to training_step.
        self.automatic_optimization = False

    def on_train_start(self) -> None:
        steps = self.trainer.num_training_batches
        if steps > 1:
            log.warning(
                "Gradient descent takes %d mini-batch steps per epoch, which makes it stochastic; "
                "set data.batch_size=${data.num_train} for full-batch steps.",
                steps,
            )

    def training_step(self, batch: Batch, batch_idx: int) -> torch.Tensor:
        objective = super().training_step(batch, batch_idx)  # J(theta): data loss (+ penalty), logged as usual
        self.manual_backward(objective)  # grad J(theta) into each parameter's .grad
        self.descend()
        return objective.detach()

    def steps_done(self, batch_idx: int) -> int:
        # No torch.optim optimizer counts the steps (Lightning's global_step stays 0): one step per batch.
        return self.trainer.current_epoch * self.trainer.num_training_batches + batch_idx

    @torch.no_grad()  # the update itself is not part of any graph; in-place changes to leaves need this
    def descend(self) -> None:
        """theta <- theta - alpha * grad J(theta), for every trainable parameter."""
        for theta in self.parameters():
            if theta.grad is None:
                continue
            theta -= self.lr * theta.grad
            theta.grad = None

    def configure_optimizers(self) -> Any:
        # The update is written out in descend(); there is no torch.optim optimizer to build.
        return None
