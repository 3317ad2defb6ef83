"""Lightning's Rich progress bar, without its per-batch cost and without `v_num`.

Lightning's RichProgressBar redraws `refresh_rate` times a second from a background thread, yet after
every training batch it gathers the values it shows, one `.item()` each: on a GPU, a wait for the
device on every step. This bar gathers them only when a redraw can show them.
"""

import math
import time
from typing import Any

import lightning.pytorch as pl
from lightning.pytorch.callbacks import RichProgressBar


class ThrottledRichProgressBar(RichProgressBar):
    """A RichProgressBar that updates after a training batch at most `refresh_rate` times a second,
    and always after an epoch's last batch, so the bar ends on the epoch's final count and values;
    it shows the run's metrics without the logger's version number."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.last_update = -math.inf

    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        now = time.monotonic()
        last_batch = batch_idx + 1 >= self.total_train_batches
        if not last_batch and self.refresh_rate > 0 and now - self.last_update < 1 / self.refresh_rate:
            return
        self.last_update = now
        super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)

    def get_metrics(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> dict[str, Any]:
        # v_num is the logger's version, shown by Lightning to tell runs apart. trainlab's run folders do that
        # (a sweep job's by the values it varies, which Hydra prints as the job starts); on the bar it is a
        # truncated repeat of a name (`v_num: =0.1`) or an empty field.
        items = super().get_metrics(trainer, pl_module)
        items.pop("v_num", None)
        return items
