"""The checkpoint format, and the one way a trained model is rebuilt from a checkpoint.

A trainlab checkpoint is a Lightning checkpoint with the run's whole config (plain containers, resolved) under
`trainlab_config`, put there by the RunConfigInCheckpoints callback: any LightningModule's checkpoints carry it,
without a hook of its own. The model is rebuilt from that config's `model` section; the file is read as plain
data, and the code its config names is checked first (trusted_code.py).
"""

import logging
import os
import pickle
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from hydra.utils import instantiate
from lightning.pytorch.callbacks import Callback, ModelCheckpoint
from lightning.pytorch.plugins.io import TorchCheckpointIO
from omegaconf import DictConfig, OmegaConf

from runkit.config.errors import ConfigError
from runkit.process.resources import disk_full_error, is_disk_full
from runkit.trusted_code import Trust, check_trusted

CONFIG_KEY = "trainlab_config"  # the run's composed config, in every checkpoint the run writes
BEST_CHECKPOINT_FILE = "best.ckpt"  # a relative link to the best checkpoint, beside it: its one stable name
ZIP_MAGIC = b"PK\x03\x04"  # torch.save writes a zip archive

log = logging.getLogger(__name__)


def is_torch_archive(path: Path) -> bool:
    with open(path, "rb") as file:
        return file.read(4) == ZIP_MAGIC


def unreadable_message(path: Path, setting: str = "ckpt_path") -> str:
    """Why torch could not read the file: a damaged torch file, or something that never was one."""
    if is_torch_archive(path):
        return (
            f"{setting}={path} is damaged or incomplete (a torch file cut short or corrupted, e.g. by a run killed "
            "while saving); use another checkpoint from the same folder."
        )
    return f"{setting}={path} is not a checkpoint (torch.save did not write it); give the path of a .ckpt file from a run's checkpoints/ folder."


def missing_message(path: Path, setting: str) -> str:
    """Why there is no checkpoint at `path`; a run's best.ckpt that is not there yet is told apart."""
    if path.is_dir():
        return f"{setting}={path} is a folder, not a checkpoint file; give one of {folder_checkpoints(path)}."
    if path.name != BEST_CHECKPOINT_FILE or not path.parent.is_dir():
        return f"{setting}={path} does not exist; give the path of a .ckpt file from a run's checkpoints/ folder."
    if path.is_symlink():  # the run was stopped between saving a new best and linking it
        return (
            f"{setting}={path} links to {os.readlink(path)}, which is gone; resume the run (ckpt_path=last) to "
            f"relink it, or give another checkpoint of {path.parent}."
        )
    return (
        f"{setting}={path} does not exist: that run saved no best checkpoint (it stopped before its first "
        f"validation, or model_checkpoint was off); use {path.parent / 'last.ckpt'} or train longer."
    )


def folder_checkpoints(folder: Path) -> str:
    """The checkpoints a folder given as ckpt_path offers: its own .ckpt files, or its checkpoints/ folder's."""
    found = sorted(folder.glob("*.ckpt")) or sorted((folder / "checkpoints").glob("*.ckpt"))
    if not found:
        return "the .ckpt files of a run's checkpoints/ folder"
    best = [path for path in found if path.name == BEST_CHECKPOINT_FILE]
    return "its checkpoints, e.g. " + str((best or found)[0])


def load_checkpoint(path: str | Path, trust: Trust | None = None, setting: str = "ckpt_path") -> dict[str, Any]:
    """Load a checkpoint written by trainlab-train, or raise a ConfigError that says what is wrong with it.

    Its stored config may name only code that `trust` covers (by default, what the project vouches for), whether
    or not the caller goes on to build it: the file is data, and never chooses which code runs.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(missing_message(path, setting))
    try:
        # weights_only refuses any pickled object that could run code when loaded.
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        if not is_torch_archive(path):  # an arbitrary file is read as a legacy pickle and fails here too
            raise ConfigError(unreadable_message(path, setting)) from None
        reason = str(error).splitlines()[0]
        raise ConfigError(
            f"{setting}={path} holds objects that are not plain data and was refused ({reason})."
        ) from None
    except Exception:  # a truncated or foreign file can fail anywhere inside the unpickler
        raise ConfigError(unreadable_message(path, setting)) from None
    if not isinstance(checkpoint, dict) or "state_dict" not in checkpoint:
        raise ConfigError(
            f"{setting}={path} is not a Lightning checkpoint (it has no state_dict); give a .ckpt file written by trainlab-train."
        )
    if CONFIG_KEY not in checkpoint:
        raise ConfigError(
            f"{setting}={path} was not written by trainlab-train (it carries no run config); give a .ckpt file from a trainlab run."
        )
    try:
        stored = stored_run_config(checkpoint)
    except (TypeError, ValueError, KeyError, AttributeError):
        raise ConfigError(
            f"{setting}={path} carries a run config that is not trainlab's; give a .ckpt file written by trainlab-train."
        ) from None
    check_trusted(stored, trust or Trust.of(), f"{setting}={path}")
    return checkpoint


def check_named_checkpoints(cfg: DictConfig, trust: Trust) -> None:
    """Read every checkpoint the run's config names by a `*_ckpt` key (a pre-trained net for fine-tuning, say)
    as trainlab reads ckpt_path, before anything is built: a missing, damaged or foreign file, or one naming
    untrusted code, is one line here rather than a traceback from the model that loads its weights."""
    seen = set()
    for key, _ in setting_paths(OmegaConf.to_container(cfg, resolve=False)):
        value = OmegaConf.select(cfg, key) if key.rpartition(".")[2].endswith("_ckpt") else None
        if isinstance(value, str) and value not in seen:
            seen.add(value)
            load_checkpoint(value, trust, setting=key)


def setting_paths(config: Any, path: str = "") -> Any:
    """(dotted key, value) of every leaf of a plain config."""
    if isinstance(config, dict):
        for key, value in config.items():
            yield from setting_paths(value, f"{path}.{key}" if path else str(key))
    else:
        yield path, config


def check_architecture(checkpoint: dict[str, Any], model: torch.nn.Module, path: str | Path) -> None:
    """Refuse a checkpoint whose weights do not fit the configured model, naming the first difference."""
    saved = {name: tuple(value.shape) for name, value in checkpoint["state_dict"].items()}
    for name, parameter in model.named_parameters():
        if name not in saved:
            difference = f"it has no {name}"
        elif saved[name] != tuple(parameter.shape):
            difference = f"{name} is {list(saved[name])} there but {list(parameter.shape)} in the model"
        else:
            continue
        raise ConfigError(
            f"ckpt_path={path} holds a different architecture than the configured model ({difference}); "
            "use the model settings the checkpoint was trained with, or a checkpoint of this model."
        )


def stored_run_config(checkpoint: dict[str, Any]) -> dict[str, Any]:
    """The whole config of the run that wrote a checkpoint."""
    run_config = checkpoint[CONFIG_KEY]
    if not isinstance(run_config, dict) or not isinstance(run_config.get("model"), dict):
        raise TypeError("the run config is not a mapping with a model section")
    return run_config


class EpochCountedFrom1(ModelCheckpoint):
    """Lightning's ModelCheckpoint, whose `{epoch}` in file names counts from 1 as the console does:
    `epoch_004.ckpt` is saved after the line `Epoch 4/5`, not after `Epoch 5/5`."""

    def format_checkpoint_name(
        self, metrics: dict[str, Any], filename: str | None = None, ver: int | None = None, prefix: str | None = None
    ) -> str:
        if "epoch" in metrics:
            metrics = {**metrics, "epoch": metrics["epoch"] + 1}
        return super().format_checkpoint_name(metrics, filename=filename, ver=ver, prefix=prefix)


class LinkBestCheckpoint(Callback):
    """Keeps `checkpoints/best.ckpt` a relative symbolic link to the Trainer's best checkpoint (its first
    ModelCheckpoint's best_model_path, the one trainlab-train tests after fitting), so that eval, predict and
    load_model have a name for it that never changes: after a resumed run, with save_top_k > 1, no file copied.

    Lightning runs ModelCheckpoint's hooks after every other callback's, so each hook here sees the saves of
    the hooks before it; on_train_end, after the last save, makes the link final.
    """

    def __init__(self) -> None:
        self.linked = ""

    def link(self, trainer: Any) -> None:
        best = str(getattr(trainer.checkpoint_callback, "best_model_path", "") or "")
        if not best or best == self.linked or not trainer.is_global_zero or "://" in best:
            return  # nothing saved yet, unchanged, another rank's, or remote storage (no links there)
        try:
            link_best_checkpoint(Path(best))
        except OSError as error:  # a file system without symbolic links: the run goes on, and says where the best is
            log.warning("Could not link %s to %s (%s).", BEST_CHECKPOINT_FILE, best, error)
        self.linked = best

    def on_train_batch_end(self, trainer: Any, *args: Any) -> None:
        self.link(trainer)

    def on_train_epoch_end(self, trainer: Any, pl_module: Any) -> None:
        self.link(trainer)

    def on_train_end(self, trainer: Any, pl_module: Any) -> None:
        self.link(trainer)

    def on_exception(self, trainer: Any, pl_module: Any, exception: BaseException) -> None:
        self.link(trainer)  # an interrupted run's link names its latest best, ready to evaluate or resume


def link_best_checkpoint(best: Path) -> None:
    """Point best.ckpt beside `best` at it, replacing the old link in one rename (never a moment without one)."""
    link = best.parent / BEST_CHECKPOINT_FILE
    if best.name == link.name:
        return
    temporary = link.with_name(f".{link.name}.{os.getpid()}.partial")
    temporary.unlink(missing_ok=True)
    os.symlink(best.name, temporary)  # relative: the run folder can be moved or copied whole
    os.replace(temporary, link)


class RunConfigInCheckpoints(Callback):
    """Puts the run's config into every checkpoint, through Lightning's public checkpoint hook: whatever the
    LightningModule, trainlab-eval, trainlab-predict and runkit.load_model rebuild it from the file alone."""

    def __init__(self, run_config: dict[str, Any]) -> None:
        self.run_config = run_config

    def on_save_checkpoint(self, trainer: Any, pl_module: Any, checkpoint: dict[str, Any]) -> None:
        checkpoint[CONFIG_KEY] = self.run_config


def load_run(
    path: str | Path, model_cfg: DictConfig | None = None, trust: Trust | None = None
) -> tuple[dict[str, Any], DictConfig]:
    """The checkpoint (read safely, its code checked against `trust`) and the config of the run that wrote it.

    `model_cfg` (from `model=...` on trainlab-eval's command line) replaces the run's model, to read the
    weights as another model config; its shapes must still match the checkpoint's.
    """
    checkpoint = load_checkpoint(path, trust)
    run_cfg = OmegaConf.create(stored_run_config(checkpoint))
    if model_cfg:
        run_cfg.model = OmegaConf.to_container(model_cfg, resolve=False)  # ${data...} resolves against the run
    return checkpoint, run_cfg


def rebuild_model(checkpoint: dict[str, Any], run_cfg: DictConfig, path: str | Path) -> Any:
    """The run's LightningModule with the checkpoint's weights, as Lightning's load_from_checkpoint builds it."""
    # Built as trainlab-train builds it, once load_run has checked the code its config names.
    model = instantiate(run_cfg.model)
    check_architecture(checkpoint, model, path)
    model.load_state_dict(checkpoint["state_dict"])
    return model


def load_trained_model(path: str | Path, trusted_packages: Sequence[str] = ()) -> Any:
    """The LightningModule of a trainlab-train checkpoint, with its weights: `<Module>.load_from_checkpoint(path)`
    with the module class the run used. A missing, foreign or damaged file, or one naming code outside the
    project's trust and `trusted_packages`, is one clear error."""
    checkpoint, run_cfg = load_run(path, trust=Trust.of(trusted_packages))
    return rebuild_model(checkpoint, run_cfg, path)


class AtomicCheckpointIO(TorchCheckpointIO):
    """Writes each checkpoint to a temporary file beside it, then renames it into place.

    A process killed while saving (Ctrl-C, SIGTERM, SIGKILL, a full disk) leaves the previous
    last.ckpt whole: the rename is atomic on a local file system, and the half-written temporary
    file is removed or left under a name that no run reads. Remote paths (s3://, ...) are written
    as Lightning writes them.
    """

    def save_checkpoint(self, checkpoint: dict[str, Any], path: str | Path, storage_options: Any = None) -> None:
        if "://" in str(path):
            super().save_checkpoint(checkpoint, path, storage_options)
            return
        temporary = Path(f"{path}.{os.getpid()}.partial")
        try:
            super().save_checkpoint(checkpoint, temporary, storage_options)
            os.replace(temporary, path)
        except (OSError, RuntimeError) as error:
            if is_disk_full(error, temporary.parent):
                raise disk_full_error(temporary.parent, f"checkpoint {Path(path).name}") from None
            raise
        finally:
            temporary.unlink(missing_ok=True)
