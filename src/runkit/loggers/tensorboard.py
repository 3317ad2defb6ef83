"""Lightning's TensorBoard logger, with the epoch counter filed beside the training curves."""

from typing import Any

from lightning.pytorch.loggers import TensorBoardLogger as LightningTensorBoardLogger


class TensorBoardLogger(LightningTensorBoardLogger):
    """Writes Lightning's `epoch` (added to every logged step) as `train/epoch`.

    TensorBoard's Time Series lists tag groups by name, and an ungrouped tag is a group of its own:
    `epoch` would be the first card a user sees, ahead of the curves they compare.
    """

    def log_metrics(self, metrics: dict[str, Any], step: int | None = None) -> None:
        if "epoch" in metrics:
            metrics = {("train/epoch" if name == "epoch" else name): value for name, value in metrics.items()}
        super().log_metrics(metrics, step)
