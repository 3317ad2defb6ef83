"""The learning rate as a training curve: `train/lr`, beside the loss it drives."""

import lightning.pytorch as pl
from lightning.pytorch.callbacks import Callback


class LogLearningRate(Callback):
    """Log each epoch's learning rate as `train/lr` (`train/lr_group<n>` for further parameter groups).

    Lightning's LearningRateMonitor names the curve after the optimizer class (`lr-Adam`), outside
    any group, so TensorBoard shows it before the curves a researcher compares; here it joins the
    `train/` group, and it reaches every logger through the module's own `log`.
    """

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        groups = [group for optimizer in trainer.optimizers for group in optimizer.param_groups]
        for number, group in enumerate(groups):
            name = "train/lr" if number == 0 else f"train/lr_group{number}"
            # Every DDP process has the same rate; sync_dist says so (an average of equal values, once an epoch).
            pl_module.log(name, float(group["lr"]), on_step=False, on_epoch=True, sync_dist=True)
