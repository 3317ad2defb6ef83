"""Classification: a supervised module whose predictions are class probabilities, and which keeps the best
validation accuracy so far (`val/acc_best`) when its metrics include `acc`."""

import torch
from torchmetrics import MaxMetric

from trainlab.models.supervised import Batch, SupervisedModule


class ClassificationModule(SupervisedModule):
    """Logs what SupervisedModule logs, plus `val/acc_best`; `trainlab-predict` writes class probabilities."""

    task = "classification"  # optional: lets trainlab refuse regression data for it in one line

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.val_acc_best = MaxMetric()
        self.val_acc_best.persistent(True)  # saved in checkpoints, so a resumed run remembers its best epoch

    def on_validation_epoch_end(self) -> None:
        super().on_validation_epoch_end()
        if self.trainer.sanity_checking or "acc" not in self.val_metrics:  # the sanity check's batches never count
            return
        self.val_acc_best(self.val_metrics["acc"].compute())
        # The same value in every process (compute() synchronised it); sync_dist keeps it so under DDP.
        self.log("val/acc_best", self.val_acc_best.compute(), prog_bar=True, sync_dist=True)

    def predict_step(self, batch: Batch, batch_idx: int) -> torch.Tensor:
        return self(batch[0]).softmax(dim=1)
