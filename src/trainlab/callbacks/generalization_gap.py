"""The train/validation gap measured fairly: both losses computed the same way, in eval mode, each epoch.

``train/loss`` is averaged over the epoch while the weights move and with dropout on, so it is not
comparable with ``val/loss``. This callback evaluates the current weights on the whole training and
validation splits, with dropout off, and logs ``gap/train_loss``, ``gap/val_loss`` and their
difference ``gap/loss`` (plus the same for accuracy on classification tasks).
"""

import lightning.pytorch as pl
import torch


class GeneralizationGap(pl.Callback):
    """Logs ``gap/*`` after every validation epoch from a pass over the train and val splits."""

    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        datamodule = trainer.datamodule
        # Every process evaluates the whole of both splits, so the values agree across processes.
        train = evaluate(pl_module, *datamodule.splits["train"], datamodule.eval_batch_size)
        val = evaluate(pl_module, *datamodule.splits["val"], datamodule.eval_batch_size)
        metrics = {
            "gap/train_loss": train["loss"],
            "gap/val_loss": val["loss"],
            "gap/loss": val["loss"] - train["loss"],
        }
        if "acc" in train:
            metrics.update(
                {"gap/train_acc": train["acc"], "gap/val_acc": val["acc"], "gap/acc": train["acc"] - val["acc"]}
            )
        pl_module.log_dict(metrics, on_step=False, on_epoch=True)


@torch.no_grad()
def evaluate(
    model: pl.LightningModule, inputs: torch.Tensor, targets: torch.Tensor, batch_size: int
) -> dict[str, float]:
    """Mean loss (and accuracy for classification) of the model's current weights, dropout off."""
    was_training = model.training
    classifier = getattr(model, "task", None) == "classification"
    model.eval()
    loss_sum, correct = 0.0, 0
    for start in range(0, len(inputs), batch_size):
        x = inputs[start : start + batch_size].to(model.device)
        y = targets[start : start + batch_size].to(model.device)
        outputs = model(x)
        loss_sum += float(model.loss(outputs, y)) * len(y)
        if classifier:
            correct += int((outputs.argmax(dim=1) == y).sum())
    model.train(was_training)
    result = {"loss": loss_sum / len(inputs)}
    if classifier:
        result["acc"] = correct / len(inputs)
    return result
