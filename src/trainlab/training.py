"""One training run, as `trainlab-train` runs it (the command line itself is in train.py).

Reads top to bottom as the run does: validate the composed config -> seed -> datamodule -> model ->
callbacks and loggers -> Trainer -> fit -> test the best checkpoint -> log hyperparameters with the
final metrics.
"""

import logging
import warnings
from pathlib import Path

import lightning.pytorch as pl
from lightning.pytorch.utilities import rank_zero_only
from omegaconf import DictConfig, OmegaConf

from trainlab.utils.checkpoint import check_architecture, load_checkpoint
from trainlab.utils.config_tree import print_config_tree
from trainlab.utils.distributed import launch_ranks_as_this_job, quiet_other_ranks
from trainlab.utils.gpu_probe import stop_gpu_probes_without_gpus
from trainlab.utils.hparams import collect_hyperparameters, log_hyperparameters
from trainlab.utils.instantiate import build_callbacks, build_datamodule, build_loggers, build_model, build_trainer
from trainlab.utils.resume import resolve_checkpoint
from trainlab.utils.run_metadata import write_run_info
from trainlab.utils.run_status import train_and_record
from trainlab.utils.threads import set_torch_threads
from trainlab.utils.validate import validate_config

log = logging.getLogger(__name__)


def train(cfg: DictConfig) -> dict[str, float]:
    """Run one experiment as configured and return its final metrics (train, val and test)."""
    validate_config(cfg)
    ckpt_path = resolve_checkpoint(cfg)
    if cfg.get("seed") is not None:
        pl.seed_everything(cfg.seed, workers=True, verbose=False)
    datamodule = build_datamodule(cfg.data)
    model = build_model(cfg, datamodule)
    resume_step = None
    if ckpt_path is not None:
        checkpoint = load_checkpoint(ckpt_path)
        check_architecture(checkpoint, model, ckpt_path)
        if cfg.get("train", True):
            resume_step = int(checkpoint.get("global_step", 0))
    model.run_config = OmegaConf.to_container(cfg, resolve=True)
    loggers = build_loggers(cfg.get("logger"), resume_step)
    callbacks = build_callbacks(cfg.get("callbacks"), loggers)
    trainer = build_trainer(cfg.trainer, callbacks, loggers)

    if cfg.get("train", True):
        trainer.fit(model, datamodule=datamodule, ckpt_path=ckpt_path, weights_only=True)
    metrics = to_floats(trainer.callback_metrics)
    if cfg.get("test", True):
        test(trainer, model, datamodule, cfg)
        metrics.update(to_floats(trainer.callback_metrics))

    log_hyperparameters(loggers, collect_hyperparameters(cfg, model), metrics)
    return metrics


def test(trainer: pl.Trainer, model: pl.LightningModule, datamodule: pl.LightningDataModule, cfg: DictConfig) -> None:
    """Test the best checkpoint of this fit; without checkpoints, the weights the model has now."""
    if not cfg.get("train", True):
        ckpt_path = cfg.get("ckpt_path")
    else:
        callback = trainer.checkpoint_callback
        ckpt_path = callback.best_model_path if callback is not None else ""
        if not ckpt_path:
            log.warning("No best checkpoint was saved (checkpointing is off); testing the last weights.")
            ckpt_path = None
    trainer.test(model, datamodule=datamodule, ckpt_path=ckpt_path)


def to_floats(metrics: dict) -> dict[str, float]:
    return {name: float(value) for name, value in metrics.items()}


@rank_zero_only
def start_run(cfg: DictConfig) -> None:
    """What happens once per run before training: warnings filter, config print-out, run metadata."""
    write_run_info(cfg, Path(cfg.paths.output_dir))
    extras = cfg.get("extras") or {}
    if extras.get("ignore_warnings"):
        warnings.filterwarnings("ignore")
    if extras.get("print_config"):
        print_config_tree(cfg, save_to=Path(cfg.paths.output_dir) / "config_tree.log")


@rank_zero_only
def report_run(cfg: DictConfig, metrics: dict[str, float]) -> None:
    """Tell the user what came out and where to look."""
    shown = ", ".join(f"{k}={v:.4f}" for k, v in sorted(metrics.items()) if k.startswith(("val/", "test/")))
    log.info("Final metrics: %s", shown)
    log.info("Run folder: %s", cfg.paths.output_dir)
    if cfg.get("logger") and "tensorboard" in cfg.logger:
        log.info("View the curves: tensorboard --logdir %s", cfg.paths.log_dir)


def run(cfg: DictConfig) -> float | None:
    """A whole run as the command line starts it, after train.py has checked the config; returns the
    sweep objective (None if the job failed)."""
    quiet_other_ranks()
    launch_ranks_as_this_job()
    set_torch_threads(cfg.get("extras"))
    stop_gpu_probes_without_gpus()
    start_run(cfg)
    metrics = train_and_record(train, cfg)  # writes status.yaml; None when a sweep's job failed
    if metrics is None:
        return None  # a sweeper takes None as a failed job and goes on
    report_run(cfg, metrics)
    return metrics.get(cfg.get("optimized_metric"))
