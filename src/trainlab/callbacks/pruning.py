"""What Lightning's ModelPruning leaves to the user: a sparsity schedule, and sparsity as a logged metric."""

import lightning.pytorch as pl
import torch
from torch import nn

PRUNABLE = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)


class SparsitySchedule:
    """ModelPruning's ``amount(epoch)``: grows the fraction of zero weights linearly to ``final_sparsity``.

    Pruning happens at the end of each of ``num_epochs`` epochs from ``start_epoch`` on; after the
    k-th of them the target sparsity is ``final_sparsity * k / num_epochs``. ModelPruning's amount is
    the fraction of the weights *still left* that a step prunes, so the target is converted here.
    """

    def __init__(self, final_sparsity: float, num_epochs: int = 1, start_epoch: int = 0) -> None:
        self.final_sparsity = final_sparsity
        self.num_epochs = num_epochs
        self.start_epoch = start_epoch

    def sparsity_after(self, epoch: int) -> float:
        """The fraction of weights that should be zero after epoch ``epoch``'s pruning."""
        steps_done = min(max(epoch - self.start_epoch + 1, 0), self.num_epochs)
        return self.final_sparsity * steps_done / self.num_epochs

    def __call__(self, epoch: int) -> float:
        before, after = self.sparsity_after(epoch - 1), self.sparsity_after(epoch)
        return 1.0 - (1.0 - after) / (1.0 - before)  # 0 outside the pruning epochs: ModelPruning skips it

    def __repr__(self) -> str:
        return (
            f"SparsitySchedule(final_sparsity={self.final_sparsity}, num_epochs={self.num_epochs}, "
            f"start_epoch={self.start_epoch})"
        )


def weight_sparsity(module: nn.Module) -> float:
    """Fraction of exactly-zero entries over the weights of every linear and conv layer (masks applied)."""
    # After pruning, `layer.weight` is the masked tensor (weight_orig * weight_mask), so this counts what the net uses.
    weights = [layer.weight for layer in module.modules() if isinstance(layer, PRUNABLE)]
    zeros = sum(int((weight == 0).sum()) for weight in weights)
    return zeros / sum(weight.numel() for weight in weights)


class SparsityMonitor(pl.Callback):
    """Logs ``model/sparsity`` once per epoch; list it after ModelPruning so it sees that epoch's pruning."""

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        with torch.no_grad():
            pl_module.log("model/sparsity", weight_sparsity(pl_module), on_epoch=True)
