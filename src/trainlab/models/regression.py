"""Regression: mean squared error, and mean absolute error as the readable metric."""

import torch
import torch.nn.functional as F
from torchmetrics import MeanAbsoluteError, MeanMetric, Metric

from trainlab.models.base import Batch, TrainlabModule


class RegressionModule(TrainlabModule):
    """Logs train/loss, val/loss, val/mae, test/loss and test/mae."""

    task = "regression"

    def __init__(self, net: torch.nn.Module, *args, **kwargs) -> None:
        super().__init__(net, *args, **kwargs)
        self.val_loss = MeanMetric()
        self.test_loss = MeanMetric()
        self.val_mae = MeanAbsoluteError()
        self.test_mae = MeanAbsoluteError()

    def loss(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return F.mse_loss(outputs, targets)

    def validation_step(self, batch: Batch, batch_idx: int) -> None:
        self.evaluate(batch, self.val_loss, self.val_mae)

    def test_step(self, batch: Batch, batch_idx: int) -> None:
        self.evaluate(batch, self.test_loss, self.test_mae)

    def stage_metrics(self, stage: str) -> dict[str, Metric]:
        return {f"{stage}/loss": getattr(self, f"{stage}_loss"), f"{stage}/mae": getattr(self, f"{stage}_mae")}

    def predict_step(self, batch: Batch, batch_idx: int) -> torch.Tensor:
        return self(batch[0])
