"""TensorBoard images for classifiers: validation samples with their predicted and true labels, and a confusion matrix.

Opt-in (`callbacks=default_images`) because drawing figures costs time. matplotlib is an optional
dependency (in .venv-extras, not .venv) imported here only when a figure is drawn; note that
torchmetrics imports it at start-up whenever it is installed.
"""

import importlib.util
from typing import Any

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.loggers import TensorBoardLogger
from torchmetrics.classification import MulticlassConfusionMatrix


class ValidationImages(Callback):
    """Every ``every_n_epochs`` validation epochs, log ``val/predictions`` and ``val/confusion_matrix``.

    ``val/predictions`` is a grid of the first ``num_images`` validation images, each titled with
    its predicted and true class (red when they differ); ``val/confusion_matrix`` counts, over the
    whole validation split, how often each true class was predicted as each class.
    """

    def __init__(self, every_n_epochs: int = 1, num_images: int = 32) -> None:
        super().__init__()
        if importlib.util.find_spec("matplotlib") is None:
            raise ValueError(
                "callbacks.validation_images draws its figures with the matplotlib package, which is not installed "
                "in this venv; run .venv-extras/bin/trainlab-train instead (`make install-extras` makes it), "
                "add it to this venv with pip install -e '.[images]', or choose callbacks=default."
            )
        self.every_n_epochs = every_n_epochs
        self.num_images = num_images
        self.logging_epoch = False
        self.confusion: MulticlassConfusionMatrix | None = None
        self.samples: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []

    def due(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> bool:
        """Log this epoch? Only for classifiers, with a TensorBoard logger, outside the sanity check."""
        if self.every_n_epochs == 0 or trainer.sanity_checking or getattr(pl_module, "task", None) != "classification":
            return False
        if tensorboard_logger(trainer) is None:
            return False
        return (trainer.current_epoch + 1) % self.every_n_epochs == 0

    def on_validation_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.samples = []
        self.confusion = None
        self.logging_epoch = self.due(trainer, pl_module)

    def on_validation_batch_end(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        if not self.logging_epoch:
            return
        inputs, targets = batch
        with torch.no_grad():  # validation_step returns no outputs, so predict again on logging epochs only
            scores = pl_module(inputs)
        if self.confusion is None:  # as many classes as the model has outputs
            self.confusion = MulticlassConfusionMatrix(scores.shape[1]).to(pl_module.device)
        predicted = scores.argmax(dim=1)
        self.confusion.update(predicted, targets)
        kept = sum(len(sample[0]) for sample in self.samples)
        if inputs.dim() == 4 and kept < self.num_images:  # a grid only for images (N, C, H, W), not feature vectors
            take = self.num_images - kept
            self.samples.append((inputs[:take].cpu(), predicted[:take].cpu(), targets[:take].cpu()))

    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.confusion is None:
            return
        matrix = self.confusion.compute()  # every process joins the sum; only rank zero draws
        if trainer.is_global_zero:
            writer = tensorboard_logger(trainer).experiment
            step = trainer.global_step
            if self.samples:
                images, predicted, targets = (torch.cat(part) for part in zip(*self.samples, strict=True))
                writer.add_figure("val/predictions", prediction_grid(images, predicted, targets), step)
            writer.add_figure("val/confusion_matrix", confusion_figure(self.confusion, matrix), step)
            writer.flush()
        self.confusion = None
        self.samples = []


def tensorboard_logger(trainer: pl.Trainer) -> TensorBoardLogger | None:
    return next((logger for logger in trainer.loggers if isinstance(logger, TensorBoardLogger)), None)


def prediction_grid(images: torch.Tensor, predicted: torch.Tensor, targets: torch.Tensor) -> Any:
    """A matplotlib figure: one panel per image, titled 'predicted / true'."""
    from matplotlib.figure import Figure

    columns = min(8, len(images))
    rows = -(-len(images) // columns)
    figure = Figure(figsize=(1.4 * columns, 1.6 * rows))
    for index, (image, guess, truth) in enumerate(zip(images, predicted, targets, strict=True)):
        axes = figure.add_subplot(rows, columns, index + 1)
        # imshow rescales each image to its own range, which undoes the data's standardisation.
        axes.imshow(image.permute(1, 2, 0).squeeze(-1).float().numpy(), cmap="gray")
        axes.set_title(f"{int(guess)} / {int(truth)}", fontsize=9, color="black" if guess == truth else "red")
        axes.axis("off")
    figure.suptitle("predicted / true", fontsize=10)
    figure.tight_layout()
    return figure


def confusion_figure(confusion: MulticlassConfusionMatrix, matrix: torch.Tensor) -> Any:
    """torchmetrics' own confusion-matrix plot (true classes in rows, predicted in columns)."""
    figure, _ = confusion.plot(val=matrix.cpu())
    return figure
