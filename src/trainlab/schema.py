"""The config schema: the type and valid range of every setting a run checks before it starts.

Each dataclass describes one section of the composed config (its `path`) and is registered in
Hydra's ConfigStore as `schema/<path>`. Fields are optional: a key a config does not have is
not checked, so options that lack a setting (e.g. `data.num_folds`) still validate. Types are
checked by OmegaConf when a section is merged into its schema; ranges by `__post_init__`.
Keys that are not listed here are checked against the class the section configures
(`trainlab.utils.validate`), which is where a misspelled key is caught.
"""

from dataclasses import dataclass
from typing import Any, ClassVar

from hydra.core.config_store import ConfigStore

from trainlab.errors import ConfigError

SCHEMA_GROUP = "schema"


def require(ok: bool, key: str, value: Any, expected: str, fix: str) -> None:
    """Raise the one-sentence error for `key=value` when a range check fails."""
    if not ok:
        raise ConfigError(f"{key}={value} is out of range: expected {expected}; {fix}.")


def at_least(key: str, value: float | None, minimum: float, fix: str) -> None:
    if value is not None:
        require(value >= minimum, key, value, f"a value >= {minimum}", fix)


@dataclass
class RunSchema:
    path: ClassVar[str] = ""
    task_name: str | None = None
    seed: int | None = None
    train: bool | None = None
    test: bool | None = None
    ckpt_path: str | None = None
    optimized_metric: str | None = None


@dataclass
class MonitorSchema:
    path: ClassVar[str] = "monitor"
    metric: str | None = None
    mode: str | None = None

    def __post_init__(self) -> None:
        if self.mode is not None:
            require(
                self.mode in ("min", "max"),
                "monitor.mode",
                self.mode,
                "min or max",
                "use monitor.mode=min for losses and monitor.mode=max for accuracies",
            )


@dataclass
class DataSchema:
    path: ClassVar[str] = "data"
    input_shape: list[int] | None = None
    num_classes: int | None = None
    num_train: int | None = None
    num_val: int | None = None
    num_test: int | None = None
    batch_size: int | None = None
    eval_batch_size: int | None = None
    num_folds: int | None = None
    fold: int | None = None
    seed: int | None = None

    def __post_init__(self) -> None:
        at_least("data.batch_size", self.batch_size, 1, "use a positive batch size, e.g. data.batch_size=128")
        at_least(
            "data.eval_batch_size", self.eval_batch_size, 1, "use a positive batch size or null for data.batch_size"
        )
        at_least("data.num_classes", self.num_classes, 2, "a classifier needs at least two classes")
        at_least("data.num_train", self.num_train, 1, "use at least one training sample")
        at_least("data.num_val", self.num_val, 1, "use at least one validation sample")
        at_least("data.num_test", self.num_test, 1, "use at least one test sample")
        at_least("data.num_folds", self.num_folds, 2, "use data.num_folds=2 or more for cross-validation")
        if self.fold is not None and self.num_folds is not None:
            last = self.num_folds - 1
            require(
                0 <= self.fold <= last,
                "data.fold",
                self.fold,
                f"a fold from 0 to {last} because data.num_folds={self.num_folds}",
                f"choose data.fold between 0 and {last}",
            )


@dataclass
class OptimizerSchema:
    path: ClassVar[str] = "optimizer"
    lr: float | None = None
    weight_decay: float | None = None
    momentum: float | None = None

    def __post_init__(self) -> None:
        if self.lr is not None:
            require(
                self.lr > 0,
                "optimizer.lr",
                self.lr,
                "a learning rate > 0",
                "use a small positive value, e.g. optimizer.lr=0.001",
            )
        at_least("optimizer.weight_decay", self.weight_decay, 0, "use 0 for none")
        if self.momentum is not None:
            require(
                0 <= self.momentum < 1,
                "optimizer.momentum",
                self.momentum,
                "a value in [0, 1)",
                "use e.g. optimizer.momentum=0.9",
            )


@dataclass
class RegularizerSchema:
    path: ClassVar[str] = "regularizer"
    l1: float | None = None
    l2: float | None = None

    def __post_init__(self) -> None:
        at_least("regularizer.l1", self.l1, 0, "use 0 for no L1 penalty")
        at_least("regularizer.l2", self.l2, 0, "use 0 for no L2 penalty")


@dataclass
class NetSchema:
    path: ClassVar[str] = "model.net"
    dropout: float | None = None

    def __post_init__(self) -> None:
        if self.dropout is not None:
            require(
                0 <= self.dropout < 1,
                "model.net.dropout",
                self.dropout,
                "a probability in [0, 1)",
                "use 0 for no dropout",
            )


@dataclass
class TrainerSchema:
    path: ClassVar[str] = "trainer"
    num_nodes: int | None = None
    min_epochs: int | None = None
    max_epochs: int | None = None
    check_val_every_n_epoch: int | None = None
    log_every_n_steps: int | None = None
    gradient_clip_val: float | None = None
    accumulate_grad_batches: int | None = None

    def __post_init__(self) -> None:
        at_least("trainer.num_nodes", self.num_nodes, 1, "use 1 on a single machine")
        at_least("trainer.min_epochs", self.min_epochs, 0, "use 0 or more")
        # Lightning reads max_epochs=-1 as "no limit".
        at_least("trainer.max_epochs", self.max_epochs, -1, "use a positive number of epochs, or -1 for no limit")
        at_least("trainer.check_val_every_n_epoch", self.check_val_every_n_epoch, 1, "use 1 to validate every epoch")
        at_least("trainer.log_every_n_steps", self.log_every_n_steps, 1, "use e.g. trainer.log_every_n_steps=20")
        at_least("trainer.gradient_clip_val", self.gradient_clip_val, 0, "use null for no clipping")
        at_least("trainer.accumulate_grad_batches", self.accumulate_grad_batches, 1, "use 1 for no accumulation")


SCHEMAS = (RunSchema, MonitorSchema, DataSchema, OptimizerSchema, RegularizerSchema, NetSchema, TrainerSchema)


def register_schemas() -> None:
    """Store every schema in Hydra's ConfigStore as `schema/<path>` (the run section as `schema/run`)."""
    store = ConfigStore.instance()
    for schema in SCHEMAS:
        store.store(group=SCHEMA_GROUP, name=schema.path or "run", node=schema)
