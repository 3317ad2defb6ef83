"""Using a trained model: test it (`trainlab-eval`) or predict with it (`trainlab-predict`).

The model (and, unless `data=...` is given, the data) is rebuilt from the run config stored in the
checkpoint, so the test set is the one the model was trained against. Predictions go to the run
folder's predictions.csv: one row per sample with its id, the prediction and, for classifiers, the
probability of every class.
"""

import csv
import logging
import os
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import lightning.pytorch as pl
import torch
from omegaconf import DictConfig

from runkit.building import build_datamodule, build_loggers, build_trainer, check_model_fits_data
from runkit.checkpoints import load_run, rebuild_model
from runkit.image_files import list_images, read_images
from runkit.runs.names import run_name
from runkit.trusted_code import trust_of
from runkit.unreadable_files import naming_unreadable_files

log = logging.getLogger(__name__)


@naming_unreadable_files()
def evaluate(cfg: DictConfig) -> dict[str, float]:
    """Test the checkpoint at cfg.ckpt_path (a validated config) and return its test metrics."""
    checkpoint, run_cfg = load_run(cfg.ckpt_path, cfg.get("model"), trust_of(cfg))
    if cfg.get("seed") is not None:
        pl.seed_everything(cfg.seed, workers=True, verbose=False)
    data_cfg = cfg.data if cfg.get("data") else run_cfg.data
    check_model_fits_data(run_cfg.model, data_cfg)
    datamodule = build_datamodule(data_cfg)
    model = rebuild_model(checkpoint, run_cfg, cfg.ckpt_path)
    trainer = build_trainer(
        cfg.trainer, callbacks=[], loggers=build_loggers(cfg.get("logger"), run_name(cfg.paths.output_dir))
    )
    log.info("Testing %s; output folder: %s", which_checkpoint(cfg.ckpt_path, checkpoint), cfg.paths.output_dir)
    trainer.test(model, datamodule=datamodule, verbose=False)  # trainlab-eval prints them in one line
    return {name: float(value) for name, value in trainer.callback_metrics.items()}


def which_checkpoint(path: str, checkpoint: dict) -> str:
    """The checkpoint file (and the file a link such as best.ckpt points to) and when its run saved it, counted
    from 1 as the console counts epochs."""
    target = f"{os.readlink(path)}, " if Path(path).is_symlink() else ""
    return f"{path} ({target}saved after epoch {int(checkpoint['epoch']) + 1}, step {int(checkpoint['global_step'])})"


PREDICTIONS_FILE = "predictions.csv"


@naming_unreadable_files()
def predict(cfg: DictConfig) -> Path:
    """Predict with the checkpoint at cfg.ckpt_path (a validated config); returns the predictions file."""
    if cfg.get("seed") is not None:
        pl.seed_everything(cfg.seed, workers=True, verbose=False)
    paths = list_images(Path(cfg.input)) if cfg.get("input") else None  # a wrong folder fails before any loading
    checkpoint, run_cfg = load_run(cfg.ckpt_path, trust=trust_of(cfg))
    data_cfg = cfg.data if cfg.get("data") else run_cfg.data
    check_model_fits_data(run_cfg.model, data_cfg)
    datamodule = build_datamodule(data_cfg)
    # Lightning saved the datamodule's state (e.g. its pixel statistics) in the checkpoint.
    datamodule.load_state_dict(checkpoint.get(type(datamodule).__qualname__) or {})
    model = rebuild_model(checkpoint, run_cfg, cfg.ckpt_path)
    trainer = build_trainer(
        cfg.trainer, callbacks=[], loggers=build_loggers(cfg.get("logger"), run_name(cfg.paths.output_dir))
    )
    log.info("Predicting with %s", which_checkpoint(cfg.ckpt_path, checkpoint))
    if paths is None:
        ids, outputs, targets = predict_split(trainer, model, datamodule)
    else:
        ids, outputs, targets = predict_files(trainer, model, datamodule, paths)
    path = Path(cfg.paths.output_dir) / PREDICTIONS_FILE
    write_predictions(path, ids, outputs, targets, classifier=getattr(model, "task", None) == "classification")
    log.info("Wrote %d predictions to %s", len(ids), path)
    return path


def predict_split(
    trainer: pl.Trainer, model: pl.LightningModule, datamodule: pl.LightningDataModule
) -> tuple[list[str], torch.Tensor, torch.Tensor]:
    """Ids (the sample's index in the split), outputs and targets of the datamodule's predict split: its
    predict_dataloader where it has one, else its test split. A module without a predict_step of its own is
    given the inputs alone, which Lightning's default predict_step passes to forward."""
    stage = "predict" if overrides(datamodule, pl.LightningDataModule, "predict_dataloader") else "test"
    datamodule.setup(stage)
    loader = getattr(datamodule, f"{stage}_dataloader")()
    batches = loader if overrides(model, pl.LightningModule, "predict_step") else InputsOnly(loader)
    outputs = torch.cat(trainer.predict(model, dataloaders=batches))
    targets = torch.cat([batch[1] for batch in loader])
    return [str(index) for index in range(len(targets))], outputs, targets


class InputsOnly:
    """A loader's batches without their targets: what Lightning's default predict_step hands to forward."""

    def __init__(self, loader: Iterable) -> None:
        self.loader = loader

    def __iter__(self) -> Iterator[torch.Tensor]:
        return (batch[0] for batch in self.loader)

    def __len__(self) -> int:
        return len(self.loader)


def overrides(obj: object, base: type, method: str) -> bool:
    """Whether `obj`'s class defines `method` itself rather than taking Lightning's default."""
    return getattr(type(obj), method) is not getattr(base, method)


def predict_files(
    trainer: pl.Trainer, model: pl.LightningModule, datamodule: pl.LightningDataModule, paths: Sequence[Path]
) -> tuple[list[str], torch.Tensor, None]:
    """Ids (file names) and outputs of image files; files come without targets."""
    images = read_images(paths, datamodule)
    outputs = torch.cat(
        trainer.predict(model, dataloaders=image_loader(images, getattr(datamodule, "eval_batch_size", 64)))
    )
    return [path.name for path in paths], outputs, None


def image_loader(images: torch.Tensor, batch_size: int) -> torch.utils.data.DataLoader:
    # A one-element tuple per batch, so the models' predict_step reads batch[0] as for any split.
    return torch.utils.data.DataLoader(torch.utils.data.TensorDataset(images), batch_size=batch_size)


# --- output -------------------------------------------------------------------------------------
def write_predictions(
    path: Path, ids: Sequence[str], outputs: torch.Tensor, targets: torch.Tensor | None, classifier: bool
) -> None:
    """Columns: id, target (data splits only), prediction, and prob_<class> for each class of a classifier."""
    names, rows = prediction_columns(outputs, classifier)
    if targets is not None:
        target_names, target_rows = columns("target", targets.reshape(len(targets), -1))
        names = target_names + names
        rows = [target + row for target, row in zip(target_rows, rows, strict=True)]
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "x", newline="") as file:  # "x": an existing predictions file is never overwritten
        writer = csv.writer(file)
        writer.writerow(["id", *names])
        writer.writerows([sample_id, *row] for sample_id, row in zip(ids, rows, strict=True))


def prediction_columns(outputs: torch.Tensor, classifier: bool) -> tuple[list[str], list[list]]:
    if not classifier:
        return columns("prediction", outputs.reshape(len(outputs), -1))
    probabilities = outputs.tolist()
    names = ["prediction", *(f"prob_{k}" for k in range(outputs.shape[1]))]
    labels = outputs.argmax(dim=1).tolist()
    return names, [[label, *probs] for label, probs in zip(labels, probabilities, strict=True)]


def columns(name: str, values: torch.Tensor) -> tuple[list[str], list[list]]:
    """One column `name` for one value per sample, else `name_0`, `name_1`, ..."""
    names = [name] if values.shape[1] == 1 else [f"{name}_{k}" for k in range(values.shape[1])]
    return names, values.tolist()
