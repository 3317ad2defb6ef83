"""One training run, as Lightning's docs write one: the data, the model and the Trainer from config; fit; test.

`trainlab-train` runs this function inside trainlab's engine (runkit), which checks the config first, opens the
run around it (its folder, status file, resume point, signals and seed) and hands over what it adds:
`data_options` (a sweep's shared data folder, a smoke test's sample limit, for a datamodule that takes them) and
`trainer_options` (its callbacks and loggers, and a checkpoint writer). configs/train.yaml names this function
(`entry`); point it at another to train another way.
"""

import logging
from typing import Any

import lightning.pytorch as pl
from hydra.utils import instantiate
from omegaconf import DictConfig

log = logging.getLogger(__name__)


def train(cfg: DictConfig, data_options: dict[str, Any], trainer_options: dict[str, Any]) -> pl.Trainer:
    """Fit (`train: true`), then test (`test: true`) the best checkpoint; the Trainer keeps the metrics."""
    datamodule: pl.LightningDataModule = instantiate(cfg.data, **data_options)
    model: pl.LightningModule = instantiate(cfg.model)
    trainer: pl.Trainer = instantiate(cfg.trainer, **trainer_options)
    if cfg.train:
        trainer.fit(model, datamodule=datamodule, ckpt_path=cfg.ckpt_path, weights_only=True)
    if cfg.test:
        # verbose=False: trainlab-train prints the test metrics with the others, in one line, when the run ends.
        tested = checkpoint_to_test(trainer, cfg)
        trainer.test(model, datamodule=datamodule, ckpt_path=tested, verbose=False, weights_only=True)
    return trainer


def checkpoint_to_test(trainer: pl.Trainer, cfg: DictConfig) -> str | None:
    """The best checkpoint of this fit (None without one: the weights the model has now); a run that did not fit
    tests the checkpoint it started from."""
    if not cfg.train:
        return cfg.ckpt_path
    best = trainer.checkpoint_callback.best_model_path if trainer.checkpoint_callback else ""
    if not best:
        log.warning("No best checkpoint was saved (checkpointing is off); testing the last weights.")
    return best or None
