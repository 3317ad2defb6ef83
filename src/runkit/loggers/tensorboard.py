"""Lightning's TensorBoard logger, with a chart of train against validation for each metric logged as both."""

import re
import threading
from typing import Any

from lightning.pytorch.loggers import TensorBoardLogger as LightningTensorBoardLogger
from lightning.pytorch.utilities import rank_zero_only

# The Custom Scalars dashboard's category that trainlab fills: one chart per metric, train against validation.
CURVES_CATEGORY = "train vs. val"
COMPARED_STAGES = ("train", "val")


class TensorBoardLogger(LightningTensorBoardLogger):
    """Writes a Custom Scalars layout into the run's event files: a chart for each metric logged as both `train/X`
    and `val/X` (loss, acc), the two curves together, in the order the model logs its validation metrics.

    Lightning adds its `epoch` counter to every logged step; it is left out, as a card of its own it says nothing
    the step axis does not.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        leave_failed_writes_to_the_run()
        self._logged_tags: dict[str, None] = {}  # every tag logged so far, in order (a dict keeps it)
        self._charted: list[str] = []

    @rank_zero_only
    def log_metrics(self, metrics: dict[str, Any], step: int | None = None) -> None:
        metrics = {name: value for name, value in metrics.items() if name != "epoch"}
        super().log_metrics(metrics, step)
        if all(name in self._logged_tags for name in metrics):  # every step but the first few: nothing new to chart
            return
        self._logged_tags.update(dict.fromkeys(metrics))
        charted = compared_metrics(list(self._logged_tags))
        if charted != self._charted:  # normally once, after the first epoch; a later layout replaces it
            self._charted = charted
            self.experiment.add_custom_scalars(curves_layout(charted))


def leave_failed_writes_to_the_run() -> None:
    """TensorBoard writes event files from a thread of its own. When a write fails (a full disk), that thread ends
    with a traceback on the console, and the run's next write raises the same error in the run's own thread, where
    the run reports it in one line (process/resources.disk_space_named). So the thread's traceback is left out."""
    previous = threading.excepthook
    if getattr(previous, "leaves_tensorboard_writes", False):  # installed already
        return

    def hook(args: threading.ExceptHookArgs) -> None:
        if not (type(args.thread).__module__.startswith("tensorboard.") and isinstance(args.exc_value, OSError)):
            previous(args)

    hook.leaves_tensorboard_writes = True
    threading.excepthook = hook


def compared_metrics(tags: list[str]) -> list[str]:
    """The metrics logged for both stages compared ('loss' for train/loss and val/loss), in val/'s order."""
    return [tag.split("/", 1)[1] for tag in tags if tag.startswith("val/") and f"train/{tag[4:]}" in tags]


def curves_layout(metrics: list[str]) -> dict[str, dict[str, list]]:
    """The Custom Scalars layout: each metric's chart draws both stages' tags (TensorBoard matches them by regex)."""
    charts = {name: ["Multiline", [f"^{stage}/{re.escape(name)}$" for stage in COMPARED_STAGES]] for name in metrics}
    return {CURVES_CATEGORY: charts}
