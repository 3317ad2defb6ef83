"""Classification: cross entropy, accuracy, and the best validation accuracy so far."""

import torch
import torch.nn.functional as F
from torchmetrics import MaxMetric, MeanMetric, Metric
from torchmetrics.classification import MulticlassAccuracy

from trainlab.models.base import Batch, TrainlabModule


class ClassificationModule(TrainlabModule):
    """Logs train/loss, train/acc, val/loss, val/acc, val/acc_best, test/loss and test/acc."""

    task = "classification"

    def __init__(self, net: torch.nn.Module, *args, **kwargs) -> None:
        super().__init__(net, *args, **kwargs)
        num_classes = self.net.num_outputs
        # Metric objects keep per-epoch sums and synchronise them across processes, so epoch
        # values are those of the whole split even under DDP.
        # Training batches come from the same datamodule as the validated ones: skip the input checks on every step.
        self.train_acc = MulticlassAccuracy(num_classes, average="micro", validate_args=False)
        self.val_acc = MulticlassAccuracy(num_classes, average="micro")
        self.test_acc = MulticlassAccuracy(num_classes, average="micro")
        self.val_loss = MeanMetric()
        self.test_loss = MeanMetric()
        self.val_acc_best = MaxMetric()
        self.val_acc_best.persistent(True)  # saved in checkpoints, so a resumed run remembers its best epoch

    def loss(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(outputs, targets)

    def update_train_metrics(self, outputs: torch.Tensor, targets: torch.Tensor) -> None:
        self.train_acc.update(outputs, targets)

    def log_train_metrics(self) -> None:
        self.log("train/acc", self.train_acc)

    def validation_step(self, batch: Batch, batch_idx: int) -> None:
        self.evaluate(batch, self.val_loss, self.val_acc)

    def stage_metrics(self, stage: str) -> dict[str, Metric]:
        return {f"{stage}/loss": getattr(self, f"{stage}_loss"), f"{stage}/acc": getattr(self, f"{stage}_acc")}

    def on_validation_epoch_end(self) -> None:
        super().on_validation_epoch_end()
        if self.trainer.sanity_checking:  # the sanity check's few batches must not count towards the best
            return
        self.val_acc_best(self.val_acc.compute())
        # The same value in every process (val_acc.compute() synchronised it); sync_dist keeps it so under DDP.
        self.log("val/acc_best", self.val_acc_best.compute(), prog_bar=True, sync_dist=True)

    def test_step(self, batch: Batch, batch_idx: int) -> None:
        self.evaluate(batch, self.test_loss, self.test_acc)

    def predict_step(self, batch: Batch, batch_idx: int) -> torch.Tensor:
        return self(batch[0]).softmax(dim=1)
