"""The config schema: the type and valid range of every setting a run checks before it starts.

One dataclass per section of the composed config (its `path`), registered in Hydra's ConfigStore
as `schema/<path>`. Every field is optional: a key a config does not have is not checked. Types
are checked by OmegaConf when a section is merged into its schema; ranges by `__post_init__`,
from each field's `rule`. Keys not listed here are checked against the class the section builds
(`trainlab.config.validate`), which is where a misspelled key is caught.

This is the one place for these rules: the classes that take the values do not check them again.
"""

from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar

from hydra.core.config_store import ConfigStore

from trainlab.config.errors import ConfigError

SCHEMA_GROUP = "schema"


def rule(check: Callable[[Any], bool], expected: str, fix: str) -> Any:
    """A field that is unset by default and, when set, must pass `check`."""
    return field(default=None, metadata={"check": check, "expected": expected, "fix": fix})


def at_least(minimum: float, fix: str) -> Any:
    return rule(lambda value: value >= minimum, f"a value >= {minimum}", fix)


def out_of_range(key: str, value: Any, expected: str, fix: str) -> ConfigError:
    return ConfigError(f"{key}={value} is out of range: expected {expected}; {fix}.")


@dataclass
class Section:
    """Checks every set field against its rule, then the rules that tie several fields together."""

    path: ClassVar[str] = ""

    def __post_init__(self) -> None:
        for spec in fields(self):
            value, meta = getattr(self, spec.name), spec.metadata
            if value is not None and "check" in meta and not meta["check"](value):
                raise out_of_range(self.key(spec.name), value, meta["expected"], meta["fix"])
        self.check_together()

    def key(self, name: str) -> str:
        return f"{self.path}.{name}" if self.path else name

    def check_together(self) -> None:
        """Rules over several fields of the section."""


@dataclass
class RunSchema(Section):
    task_name: str | None = None
    seed: int | None = None
    train: bool | None = None
    test: bool | None = None
    ckpt_path: str | None = None
    optimized_metric: str | None = None


@dataclass
class MonitorSchema(Section):
    path: ClassVar[str] = "monitor"
    metric: str | None = None
    mode: str | None = rule(
        lambda mode: mode in ("min", "max"),
        "min or max",
        "use monitor.mode=min for losses and monitor.mode=max for accuracies",
    )


@dataclass
class DataSchema(Section):
    path: ClassVar[str] = "data"
    input_shape: list[int] | None = None
    num_classes: int | None = at_least(2, "a classifier needs at least two classes")
    num_train: int | None = at_least(1, "use at least one training sample")
    num_val: int | None = at_least(1, "use at least one validation sample")
    num_test: int | None = at_least(1, "use at least one test sample")
    batch_size: int | None = at_least(1, "use a positive batch size, e.g. data.batch_size=128")
    eval_batch_size: int | None = at_least(1, "use a positive batch size or null for data.batch_size")
    num_folds: int | None = at_least(2, "use data.num_folds=2 or more for cross-validation")
    fold: int | None = None
    train_size: int | None = None
    seed: int | None = None

    def check_together(self) -> None:
        if self.train_size is not None and self.train_size < 1:
            raise ConfigError(
                f"data.train_size={self.train_size} must be a positive number of samples, or null for all."
            )
        if self.num_folds is None:
            if self.fold:
                raise ConfigError(
                    f"data.fold={self.fold} is set but data.num_folds is null; set data.num_folds to the number of "
                    f"folds (more than {self.fold}), or leave data.fold=0 for the plain validation split."
                )
            return
        last = self.num_folds - 1
        if self.fold is not None and not 0 <= self.fold <= last:
            raise out_of_range(
                "data.fold",
                self.fold,
                f"a fold from 0 to {last} because data.num_folds={self.num_folds}",
                f"choose data.fold between 0 and {last}",
            )
        if self.seed is None:  # every fold's run must cut the same folds
            raise ConfigError(
                f"data.num_folds={self.num_folds} needs a fixed seed so that every fold's run cuts the same folds, "
                "but seed is null; set seed to a number (e.g. seed=0)."
            )


@dataclass
class OptimizerSchema(Section):
    path: ClassVar[str] = "optimizer"
    lr: float | None = rule(
        lambda lr: lr > 0, "a learning rate > 0", "use a small positive value, e.g. optimizer.lr=0.001"
    )
    weight_decay: float | None = at_least(0, "use 0 for none")
    momentum: float | None = rule(lambda m: 0 <= m < 1, "a value in [0, 1)", "use e.g. optimizer.momentum=0.9")


@dataclass
class ModelSchema(Section):
    path: ClassVar[str] = "model"
    lr: float | None = rule(lambda lr: lr > 0, "a step size > 0", "use a small positive value, e.g. optimizer.lr=0.1")


@dataclass
class RegularizerSchema(Section):
    path: ClassVar[str] = "regularizer"
    l1: float | None = at_least(0, "use 0 for no L1 penalty")
    l2: float | None = at_least(0, "use 0 for no L2 penalty")


@dataclass
class NetSchema(Section):
    path: ClassVar[str] = "model.net"
    dropout: float | None = rule(lambda p: 0 <= p < 1, "a probability in [0, 1)", "use 0 for no dropout")


@dataclass
class TrainerSchema(Section):
    path: ClassVar[str] = "trainer"
    num_nodes: int | None = at_least(1, "use 1 on a single machine")
    min_epochs: int | None = at_least(0, "use 0 or more")
    # Lightning reads max_epochs=-1 as "no limit".
    max_epochs: int | None = at_least(-1, "use a positive number of epochs, or -1 for no limit")
    check_val_every_n_epoch: int | None = at_least(1, "use 1 to validate every epoch")
    log_every_n_steps: int | None = at_least(1, "use e.g. trainer.log_every_n_steps=20")
    gradient_clip_val: float | None = at_least(0, "use null for no clipping")
    accumulate_grad_batches: int | None = at_least(1, "use 1 for no accumulation")


@dataclass
class ValidationImagesSchema(Section):
    """The image callback of `callbacks=default_images`."""

    path: ClassVar[str] = "callbacks.validation_images"
    every_n_epochs: int | None = at_least(0, "use 0 to turn the images off")
    num_images: int | None = at_least(0, "use e.g. 32")


@dataclass
class SparsityScheduleSchema(Section):
    """The pruning schedule of `callbacks=pruning`."""

    path: ClassVar[str] = "callbacks.model_pruning.amount"
    final_sparsity: float | None = rule(lambda s: 0 <= s < 1, "a fraction in [0, 1)", "use e.g. 0.5")
    num_epochs: int | None = at_least(1, "prune over at least one epoch")
    start_epoch: int | None = at_least(0, "use 0 to prune from the first epoch")


SCHEMAS = (
    RunSchema,
    MonitorSchema,
    DataSchema,
    OptimizerSchema,
    ModelSchema,
    RegularizerSchema,
    NetSchema,
    TrainerSchema,
    ValidationImagesSchema,
    SparsityScheduleSchema,
)


def register_schemas() -> None:
    """Store every schema in Hydra's ConfigStore as `schema/<path>` (the run section as `schema/run`)."""
    store = ConfigStore.instance()
    for schema in SCHEMAS:
        store.store(group=SCHEMA_GROUP, name=schema.path or "run", node=schema)
