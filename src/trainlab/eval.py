"""Test a saved checkpoint: `trainlab-eval ckpt_path=PATH [data=...]`.

The model (and, unless `data=...` is given, the data) is rebuilt from the run config stored in the
checkpoint, so the test set is the one the model was trained against.
"""

import logging

import hydra
import lightning.pytorch as pl
from omegaconf import DictConfig

from trainlab.building import build_datamodule, build_loggers, build_trainer, load_run, restore_model
from trainlab.cli import exit_on_user_error, run_console_script
from trainlab.config import CONFIG_DIR, validate_config

log = logging.getLogger(__name__)


def evaluate(cfg: DictConfig) -> dict[str, float]:
    """Test the checkpoint at cfg.ckpt_path and return its test metrics."""
    validate_config(cfg)
    checkpoint, run_cfg = load_run(cfg.ckpt_path, cfg.get("model"))
    if cfg.get("seed") is not None:
        pl.seed_everything(cfg.seed, workers=True, verbose=False)
    datamodule = build_datamodule(cfg.data if cfg.get("data") else run_cfg.data)
    model = restore_model(checkpoint, run_cfg, datamodule, cfg.ckpt_path)
    trainer = build_trainer(cfg.trainer, callbacks=[], loggers=build_loggers(cfg.get("logger")))
    trainer.test(model, datamodule=datamodule)
    return {name: float(value) for name, value in trainer.callback_metrics.items()}


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="eval")
@exit_on_user_error
def main(cfg: DictConfig) -> None:
    metrics = evaluate(cfg)
    log.info("Test metrics: %s", ", ".join(f"{k}={v:.4f}" for k, v in sorted(metrics.items())))


def cli() -> None:
    """The `trainlab-eval` console script."""
    run_console_script(main)


if __name__ == "__main__":
    cli()
