"""Regression: mean squared error, and mean absolute error as the readable metric."""

import torch
import torch.nn.functional as F
from torchmetrics import MeanAbsoluteError, MeanMetric

from trainlab.models.base import TrainlabModule

Batch = tuple[torch.Tensor, torch.Tensor]


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

    def _evaluate(self, batch: Batch, loss_metric: MeanMetric, mae_metric: MeanAbsoluteError, stage: str) -> None:
        inputs, targets = batch
        outputs = self(inputs)
        loss_metric.update(self.loss(outputs, targets), weight=len(targets))
        mae_metric.update(outputs, targets)
        self.log(f"{stage}/loss", loss_metric, on_step=False, on_epoch=True, prog_bar=True)
        self.log(f"{stage}/mae", mae_metric, on_step=False, on_epoch=True, prog_bar=True)

    def validation_step(self, batch: Batch, batch_idx: int) -> None:
        self._evaluate(batch, self.val_loss, self.val_mae, "val")

    def test_step(self, batch: Batch, batch_idx: int) -> None:
        self._evaluate(batch, self.test_loss, self.test_mae, "test")

    def predict_step(self, batch: Batch, batch_idx: int) -> torch.Tensor:
        return self(batch[0])
