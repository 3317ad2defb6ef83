"""The progress bar gathers the values it shows only when it can redraw them, and always at an epoch's end."""

from pathlib import Path

import pytest

from runkit.building import build_datamodule, build_loggers, build_model, build_trainer
from runkit.callbacks import progress_bar
from runkit.callbacks.progress_bar import ThrottledRichProgressBar
from tests.runkit.helpers.config import compose_config
from tests.runkit.helpers.runs import TINY_MLP


class RecordingBar(ThrottledRichProgressBar):
    """Records the values the bar gathered to show, and after which training batch."""

    def __init__(self) -> None:
        super().__init__(refresh_rate=10)
        self.batch: tuple[int, int] | None = None
        self.shown: list[tuple[int, int, dict]] = []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.batch = (trainer.current_epoch, batch_idx)
        super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)
        self.batch = None

    def get_metrics(self, trainer, pl_module) -> dict:
        values = super().get_metrics(trainer, pl_module)
        if self.batch is not None:  # gathered after a training batch, not after validation
            self.shown.append((*self.batch, values))
        return values


def test_the_bar_skips_batches_between_redraws_and_shows_each_epochs_last(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A clock that stands still: every batch falls within the same tenth of a second.
    monkeypatch.setattr(progress_bar.time, "monotonic", lambda: 1000.0)
    overrides = [*TINY_MLP, "trainer.log_every_n_steps=1", "trainer.max_epochs=2", "trainer.accelerator=cpu"]
    cfg = compose_config("train", overrides, tmp_path / "run")
    datamodule = build_datamodule(cfg.data)
    bar = RecordingBar()
    trainer = build_trainer(cfg.trainer, [bar], build_loggers(cfg.logger))
    trainer.fit(build_model(cfg), datamodule=datamodule)
    # 256 samples in batches of 32: 8 batches an epoch. Drawn: the run's first batch, then each epoch's last.
    assert [(epoch, batch) for epoch, batch, _ in bar.shown] == [(0, 0), (0, 7), (1, 7)]
    last_values = bar.shown[-1][2]
    assert {"val/loss", "val/acc"} <= set(last_values)  # the bar ends showing the latest validation too
    assert last_values["train/loss_step"] == pytest.approx(float(trainer.callback_metrics["train/loss_step"]))
