"""Hyperparameters for TensorBoard's HPARAMS tab, paired with the run's real final metrics."""

from collections.abc import Mapping
from typing import Any

import torch
from hydra.core.hydra_config import HydraConfig
from lightning.pytorch.loggers import Logger, TensorBoardLogger
from lightning.pytorch.utilities import rank_zero_only
from omegaconf import DictConfig, OmegaConf

from trainlab.compat import hparams_summaries, write_summaries
from trainlab.runs.names import sweep_varying_keys
from trainlab.runs.status import final_results

# The config groups whose chosen option names a run's recipe: logged first, by option name (model=cnn).
CHOICES = ("experiment", "data", "model", "optimizer", "scheduler", "regularizer", "trainer", "callbacks")
# The sections whose settings change what is learned; of the trainer and the data, only these keys.
LEARNING_SECTIONS = ("optimizer", "scheduler", "regularizer", "model", "data", "trainer")
TRAINER_KEYS = {"max_epochs", "max_steps", "min_epochs", "precision", "gradient_clip_val", "accumulate_grad_batches"}
DATA_NOT_LEARNING = {"data_dir", "download", "seed", "eval_batch_size"}


def flatten(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """{'optimizer': {'lr': 0.1}} -> {'optimizer.lr': 0.1}; lists and None become strings, as TensorBoard needs."""
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten(value, f"{name}."))
        elif isinstance(value, bool | int | float | str):
            flat[name] = value
        else:
            flat[name] = str(value)
    return flat


def collect_hyperparameters(cfg: DictConfig, model: torch.nn.Module) -> dict[str, Any]:
    """What a researcher compares runs by, in this order: the config groups' chosen options (model=cnn, ...),
    the settings that change what is learned (`group.key`), seed and tags, and the model's size. Class
    paths, `_partial_` flags, folders and the internals of callbacks and loggers are left out."""
    chosen = chosen_options()
    params: dict[str, Any] = {group: chosen[group] for group in CHOICES if group in chosen}
    tree = OmegaConf.to_container(cfg, resolve=True)
    for section in LEARNING_SECTIONS:
        for key, value in flatten(tree.get(section) or {}, f"{section}.").items():
            if learning_setting(key):
                params[key] = value
    params["seed"] = cfg.seed if cfg.get("seed") is not None else "None"
    params["tags"] = str(list(cfg.get("tags") or []))
    params["model/params_total"] = sum(p.numel() for p in model.parameters())
    params["model/params_trainable"] = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return params


def chosen_options() -> dict[str, str]:
    """The option chosen for each config group, as Hydra composed it (empty outside Hydra)."""
    if not HydraConfig.initialized():
        return {}
    return {str(group): str(option) for group, option in HydraConfig.get().runtime.choices.items() if option}


def learning_setting(key: str) -> bool:
    """Whether a flattened `section.key` changes what is learned (not a class path, flag, folder or device)."""
    section, _, rest = key.partition(".")
    parts = rest.split(".")
    if any(part.startswith("_") for part in parts):
        return False
    if section == "trainer":
        return rest in TRAINER_KEYS
    if section == "data":
        return rest not in DATA_NOT_LEARNING
    return True


@rank_zero_only  # other DDP ranks hold a dummy TensorBoard writer
def log_hyperparameters(loggers: list[Logger], params: dict[str, Any], metrics: dict[str, float]) -> None:
    """Record hyperparameters with the final metrics, so runs can be compared by real results."""
    for logger in loggers:
        if isinstance(logger, TensorBoardLogger):
            write_tensorboard_hparams(logger, params, final_results(metrics))
        else:
            logger.log_hyperparams(params)


def write_tensorboard_hparams(logger: TensorBoardLogger, params: dict[str, Any], metrics: dict[str, float]) -> None:
    """Write the HPARAMS summary into the run's event files.

    TensorBoard reads each metric's value from the scalar of the same tag in the same run, which
    the training already logged; Lightning's own `log_hyperparams(params, metrics)` would add a
    second point at step 0 to every one of those curves, so the summary is written directly, into
    an event file of its own in the run's TensorBoard folder (Lightning has closed its writer by now).

    TensorBoard orders the tab's columns by name, after those marked as differing between runs: in a
    sweep, the keys it varies (`optimizer.lr`, `seed`) are marked, so they lead.
    """
    write_summaries(logger.log_dir, hparams_summaries(params, metrics, differing=set(sweep_varying_keys())))
