"""The config schema: the type and valid range of every setting a run checks before it starts.

`SETTINGS` is the table: one row per setting, its type and, where it has one, its range rule.
Rows are grouped into one dataclass per section (`data`, `optimizer`, ...), registered in Hydra's
ConfigStore as `schema/<section>`: OmegaConf checks the types when a section is merged into it,
and `__post_init__` the ranges. A setting a config does not have is not checked. Keys not listed
here are checked against the class their section builds (`config/validate.py`), which is where a
misspelled key is caught. This is the one place for these rules: the classes that take the
values do not check them again.
"""

from collections.abc import Callable
from dataclasses import dataclass, field, fields, make_dataclass
from typing import Any, ClassVar, NamedTuple

from hydra.core.config_store import ConfigStore

from runkit.config.errors import ConfigError

SCHEMA_GROUP = "schema"


class Rule(NamedTuple):
    check: Callable[[Any], bool]
    expected: str
    fix: str


def at_least(minimum: float, fix: str) -> Rule:
    return Rule(lambda value: value >= minimum, f"a value >= {minimum}", fix)


def fraction(expected: str, fix: str) -> Rule:
    return Rule(lambda value: 0 <= value < 1, expected, fix)


# setting: (type, range rule or None)
SETTINGS: dict[str, tuple[type, Rule | None]] = {
    "task_name": (str, None),
    "entry": (str, None),
    "seed": (int, None),
    "train": (bool, None),
    "test": (bool, None),
    "ckpt_path": (str, None),
    "optimized_metric": (str, None),
    "trusted_packages": (list[str], None),
    "monitor.metric": (str, None),
    "monitor.mode": (
        str,
        Rule(
            lambda mode: mode in ("min", "max"),
            "min or max",
            "use monitor.mode=min for losses and monitor.mode=max for accuracies",
        ),
    ),
    "data.input_shape": (list[int], None),
    "data.num_classes": (int, at_least(2, "a classifier needs at least two classes")),
    "data.num_train": (int, at_least(1, "use at least one training sample")),
    "data.num_val": (int, at_least(1, "use at least one validation sample")),
    "data.num_test": (int, at_least(1, "use at least one test sample")),
    "data.batch_size": (int, at_least(1, "use a positive batch size, e.g. data.batch_size=128")),
    "data.eval_batch_size": (int, at_least(1, "use a positive batch size or null for data.batch_size")),
    "data.num_folds": (int, at_least(2, "use data.num_folds=2 or more for cross-validation")),
    "data.fold": (int, None),  # checked with num_folds, in check_folds
    "data.train_size": (int, None),
    "data.seed": (int, None),
    "optimizer.lr": (
        float,
        Rule(lambda lr: lr > 0, "a learning rate > 0", "use a small positive value, e.g. optimizer.lr=0.001"),
    ),
    "optimizer.weight_decay": (float, at_least(0, "use 0 for none")),
    "optimizer.momentum": (float, fraction("a value in [0, 1)", "use e.g. optimizer.momentum=0.9")),
    "model.lr": (
        float,
        Rule(lambda lr: lr > 0, "a step size > 0", "use a small positive value, e.g. optimizer.lr=0.1"),
    ),
    "model.net.dropout": (float, fraction("a probability in [0, 1)", "use 0 for no dropout")),
    "regularizer.l1": (float, at_least(0, "use 0 for no L1 penalty")),
    "regularizer.l2": (float, at_least(0, "use 0 for no L2 penalty")),
    "trainer.num_nodes": (int, at_least(1, "use 1 on a single machine")),
    "trainer.min_epochs": (int, at_least(0, "use 0 or more")),
    # Lightning reads max_epochs=-1 as "no limit".
    "trainer.max_epochs": (int, at_least(-1, "use a positive number of epochs, or -1 for no limit")),
    "trainer.check_val_every_n_epoch": (int, at_least(1, "use 1 to validate every epoch")),
    "trainer.log_every_n_steps": (int, at_least(1, "use e.g. trainer.log_every_n_steps=20")),
    "trainer.gradient_clip_val": (float, at_least(0, "use null for no clipping")),
    "trainer.accumulate_grad_batches": (int, at_least(1, "use 1 for no accumulation")),
    "callbacks.validation_images.every_n_epochs": (int, at_least(0, "use 0 to turn the images off")),
    "callbacks.validation_images.num_images": (int, at_least(0, "use e.g. 32")),
    "callbacks.model_pruning.amount.final_sparsity": (float, fraction("a fraction in [0, 1)", "use e.g. 0.5")),
    "callbacks.model_pruning.amount.num_epochs": (int, at_least(1, "prune over at least one epoch")),
    "callbacks.model_pruning.amount.start_epoch": (int, at_least(0, "use 0 to prune from the first epoch")),
}


def out_of_range(key: str, value: Any, expected: str, fix: str) -> ConfigError:
    return ConfigError(f"{key}={value} is out of range: expected {expected}; {fix}.")


def check_folds(data: Any) -> None:
    """The k-fold settings of `data`, which only make sense together."""
    if data.train_size is not None and data.train_size < 1:
        raise ConfigError(f"data.train_size={data.train_size} must be a positive number of samples, or null for all.")
    if data.num_folds is None:
        if data.fold:
            raise ConfigError(
                f"data.fold={data.fold} is set but data.num_folds is null; set data.num_folds to the number of "
                f"folds (more than {data.fold}), or leave data.fold=0 for the plain validation split."
            )
        return
    last = data.num_folds - 1
    if data.fold is not None and not 0 <= data.fold <= last:
        raise out_of_range(
            "data.fold",
            data.fold,
            f"a fold from 0 to {last} because data.num_folds={data.num_folds}",
            f"choose data.fold between 0 and {last}",
        )
    if data.seed is None:  # every fold's run must cut the same folds
        raise ConfigError(
            f"data.num_folds={data.num_folds} needs a fixed seed so that every fold's run cuts the same folds, "
            "but seed is null; set seed to a number (e.g. seed=0)."
        )


# Rules over several settings of one section.
TOGETHER: dict[str, Callable[[Any], None]] = {"data": check_folds}


@dataclass
class Section:
    """The base of every section's schema: checks each set field against its rule, then TOGETHER."""

    path: ClassVar[str] = ""

    def __post_init__(self) -> None:
        for spec in fields(self):
            value, rule = getattr(self, spec.name), spec.metadata["rule"]
            if value is not None and rule is not None and not rule.check(value):
                key = f"{self.path}.{spec.name}" if self.path else spec.name
                raise out_of_range(key, value, rule.expected, rule.fix)
        if self.path in TOGETHER:
            TOGETHER[self.path](self)


def section_schemas() -> list[type[Section]]:
    """One dataclass per section of SETTINGS, every field optional (None: not set)."""
    sections: dict[str, list[tuple[str, Any, Any]]] = {}
    for key, (kind, rule) in SETTINGS.items():
        path, _, name = key.rpartition(".")
        sections.setdefault(path, []).append((name, kind | None, field(default=None, metadata={"rule": rule})))
    return [
        make_dataclass(f"Schema_{path or 'run'}", rows, bases=(Section,), namespace={"path": path})
        for path, rows in sections.items()
    ]


def register_schemas() -> None:
    """Store every section's schema in Hydra's ConfigStore as `schema/<path>` (the top level as `schema/run`)."""
    store = ConfigStore.instance()
    for schema in section_schemas():
        store.store(group=SCHEMA_GROUP, name=schema.path or "run", node=schema)
