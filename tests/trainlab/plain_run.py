"""trainlab/train.py's run with nothing of the engine around it, for the researcher's tests."""

from typing import Any

import lightning.pytorch as pl
from omegaconf import DictConfig

from trainlab.train import train

# The loggers, checkpoints, bar and summary a run of trainlab-train adds: none in these tests.
QUIET = {"logger": False, "enable_checkpointing": False, "enable_progress_bar": False, "enable_model_summary": False}


class FitMetrics(pl.Callback):
    """The metrics when fitting ends: testing afterwards replaces the Trainer's callback_metrics with its own."""

    def __init__(self) -> None:
        self.metrics: dict[str, float] = {}

    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.metrics = {name: float(value) for name, value in trainer.callback_metrics.items()}


def fit_and_test(cfg: DictConfig, *callbacks: pl.Callback, **trainer_options: Any) -> dict[str, float]:
    """trainlab/train.py's run with nothing of the engine around it (no logger, no checkpoints unless asked):
    the metrics of the fit's last epoch and of the test."""
    pl.seed_everything(cfg.seed, verbose=False)  # as trainlab-train seeds every run: the same weights each time
    fit = FitMetrics()
    options = {**QUIET, "callbacks": [*callbacks, fit], **trainer_options}
    trainer = train(cfg, data_options={}, trainer_options=options)
    return fit.metrics | {name: float(value) for name, value in trainer.callback_metrics.items()}
