"""The hyperparameters each logger records with the run's final metrics.

TensorBoard's HPARAMS tab and the CSV log get a short set, the one runs are compared by: the tab's table
shows the first five hyperparameter columns (those a sweep varies, then by name), then the metrics, each
column 160 px wide; a 1600-px window has room for six. MLflow and W&B, whose tables pick their columns
from any number of parameters, get the whole config as well: a tracking server may be all a reader has
of a run.
"""

from collections.abc import Mapping
from typing import Any

import torch
from hydra.core.hydra_config import HydraConfig
from lightning.pytorch.loggers import Logger, MLFlowLogger, TensorBoardLogger, WandbLogger
from lightning.pytorch.utilities import rank_zero_only
from omegaconf import DictConfig, OmegaConf

from runkit.compat import hparams_summaries, write_summaries
from runkit.runs.names import sweep_varying_keys
from runkit.runs.status import final_results

# The config groups whose chosen option names a run's recipe (model=cnn); experiment only when one is set.
RECIPE_GROUPS = ("experiment", "data", "model", "optimizer")
# The settings researchers compare runs by, whatever a sweep varies.
COMPARED_SETTINGS = ("optimizer.lr", "data.batch_size", "trainer.max_epochs", "seed")
# The loggers that take the whole config: their tables pick columns from any number of parameters.
WHOLE_CONFIG_LOGGERS = (MLFlowLogger, WandbLogger)

NOT_IN_CONFIG = object()  # a key a sweep varies that the run's config lacks (hydra.*): left out


def collect_hyperparameters(cfg: DictConfig) -> dict[str, Any]:
    """What runs are compared by, in this order: the recipe's config choices (`model: cnn`), every key the sweep
    varies (a config group by its option), the settings researchers compare, and the tags. The rest of the config
    stays in the run folder (.hydra/config.yaml)."""
    chosen = chosen_options()
    params: dict[str, Any] = {group: chosen[group] for group in RECIPE_GROUPS if group in chosen}
    for key in [*sweep_varying_keys(), *COMPARED_SETTINGS]:
        value = chosen[key] if key in chosen else OmegaConf.select(cfg, key, default=NOT_IN_CONFIG)
        if key not in params and value is not NOT_IN_CONFIG:
            params[key] = loggable(value)
    params["tags"] = str(list(cfg.get("tags") or []))
    return params


def whole_config_hyperparameters(cfg: DictConfig, model: torch.nn.Module) -> dict[str, Any]:
    """The compared set, then every setting of the config (`group.key`) and the model's size."""
    params = collect_hyperparameters(cfg)
    for key, value in flatten(OmegaConf.to_container(cfg, resolve=True)).items():
        params.setdefault(key, value)
    params["model/params_total"] = sum(p.numel() for p in model.parameters())
    params["model/params_trainable"] = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return params


def chosen_options() -> dict[str, str]:
    """The option chosen for each config group, as Hydra composed it (empty outside Hydra)."""
    if not HydraConfig.initialized():
        return {}
    return {str(group): str(option) for group, option in HydraConfig.get().runtime.choices.items() if option}


def loggable(value: Any) -> bool | int | float | str:
    """A value as every logger takes it: lists, None and sections as text."""
    return value if isinstance(value, bool | int | float | str) else str(value)


def flatten(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """{'optimizer': {'lr': 0.1}} -> {'optimizer.lr': 0.1}, each value loggable."""
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = loggable(value)
    return flat


@rank_zero_only  # other DDP ranks hold a dummy TensorBoard writer
def log_hyperparameters(
    loggers: list[Logger], cfg: DictConfig, model: torch.nn.Module, metrics: dict[str, float]
) -> None:
    """Record the run's hyperparameters with its final metrics, so runs can be compared by real results."""
    compared = collect_hyperparameters(cfg)
    for logger in loggers:
        if isinstance(logger, TensorBoardLogger):
            write_tensorboard_hparams(logger, compared, results_in_order(metrics, cfg.get("optimized_metric")))
        elif isinstance(logger, WHOLE_CONFIG_LOGGERS):
            logger.log_hyperparams(whole_config_hyperparameters(cfg, model))
        else:
            logger.log_hyperparams(compared)


def results_in_order(metrics: dict[str, float], leading: str | None) -> dict[str, float]:
    """The final val/ and test/ values, the metric a sweep optimizes first: after the five hyperparameter
    columns, a 1600-px window has room for one metric column."""
    results = final_results(metrics)
    first = {leading: results[leading]} if leading in results else {}
    return first | results


def write_tensorboard_hparams(logger: TensorBoardLogger, params: dict[str, Any], metrics: dict[str, float]) -> None:
    """Write the HPARAMS summary into the run's event files.

    TensorBoard reads each metric's value from the scalar of the same tag in the same run, which
    the training already logged; Lightning's own `log_hyperparams(params, metrics)` would add a
    second point at step 0 to every one of those curves, so the summary is written directly, into
    an event file of its own in the run folder (Lightning has closed its writer by now). The tab names
    each run by that folder, relative to the folder TensorBoard serves: `<job>`.

    The columns come in name order after those marked as differing between runs: in a sweep, the keys
    it varies (`optimizer.lr`, `seed`), so they lead.
    """
    shown = {key: as_text(value) for key, value in params.items()}
    write_summaries(logger.log_dir, hparams_summaries(shown, metrics, differing=set(sweep_varying_keys())))


def as_text(value: Any) -> Any:
    """A hyperparameter as the HPARAMS tab shows it alike in every row: numbers as text.

    The tab shows a number to five significant digits, zeros included: a learning rate of 0.01 as
    0.010000 and one of 0.001 as 0.0010000, a batch size of 128 as 128.00, a seed of 123456789 as
    1.2346e+8. As text, to six significant digits, they read as written: 0.01, 0.001, 3e-05, 128.
    The cost: the tab filters a text column by its values (a checkbox each) rather than by a range,
    and draws it on a categorical axis rather than a log scale.
    """
    if isinstance(value, float):
        return format(value, "g")
    return str(value) if isinstance(value, int) else value  # booleans too: True, as the config writes it
