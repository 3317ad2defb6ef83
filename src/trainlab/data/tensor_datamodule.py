"""The base of every trainlab datamodule: tensors in memory, seeded splits, batches by slicing."""

import logging
from collections.abc import Sequence
from pathlib import Path

import lightning.pytorch as pl
import torch

from trainlab.data.folds import fold_indices
from trainlab.data.loader import EpochOrder, TensorLoader
from trainlab.data.placement import place
from trainlab.data.shared import data_key, shared_data

log = logging.getLogger(__name__)

Split = tuple[torch.Tensor, torch.Tensor]

# The attribute types a datamodule keeps its settings in; what its data depend on is among them.
SETTING_TYPES = (int, float, str, bool, tuple, list, dict, Path, type(None))


class TensorDataModule(pl.LightningDataModule):
    """Holds (inputs, targets) tensors for train, val and test and hands out batches from memory.

    A subclass says how to get its data: ``load_train_pool`` returns the data that training and
    validation are cut from, ``load_test`` the held-out test set. This class cuts the validation
    set from the pool with a seeded permutation and serves all three splits.

    With ``num_folds=K`` the pool is cut into K folds instead (stratified by class for
    classification) and fold ``fold`` is the validation set; ``train_size=N`` then keeps only the
    first N samples of the training split, for learning curves. The test set is never touched.
    """

    task = "classification"  # or "regression"; a model must be made for the same task

    def __init__(
        self,
        input_shape: Sequence[int],
        batch_size: int = 128,
        num_val: int = 1000,
        seed: int | None = 0,
        eval_batch_size: int | None = None,
        num_folds: int | None = None,
        fold: int = 0,
        train_size: int | None = None,
        shared_dir: str | Path | None = None,
        fast_dev_run: bool | int = False,
    ) -> None:
        super().__init__()
        # The ranges of these settings are checked by the config schema (config/schema.py) before this runs.
        self.input_shape = tuple(input_shape)
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size or batch_size
        self.num_val = num_val
        self.seed = seed if seed is not None else int(torch.seed() % 2**31)
        self.num_folds = num_folds
        self.fold = fold
        self.train_size = train_size
        self.splits: dict[str, Split] = {}
        # At most this many samples in each split (None: all). Set for a fast_dev_run, which takes a batch or two
        # of each split: a smoke test then builds only the data it uses (see only_what_a_fast_dev_run_uses).
        self.sample_limit: int | None = None
        self.only_what_a_fast_dev_run_uses(fast_dev_run)
        # In a multirun, the folder where jobs on the same data share one copy of it (see data/shared.py).
        self.shared_dir = Path(shared_dir) if shared_dir is not None else None

    # --- what a subclass provides -------------------------------------------------------------
    def load_train_pool(self) -> Split:
        raise NotImplementedError

    def load_test(self) -> Split:
        raise NotImplementedError

    def only_what_a_fast_dev_run_uses(self, fast_dev_run: bool | int) -> None:
        """Build at most the samples `trainer.fast_dev_run` uses: that many batches of each split (1 for true)."""
        if fast_dev_run:
            batches = 1 if fast_dev_run is True else int(fast_dev_run)
            self.sample_limit = batches * max(self.batch_size, self.eval_batch_size)

    def limited(self, count: int) -> int:
        """`count` samples, or fewer under a sample limit; a subclass that makes its data asks for this many."""
        return count if self.sample_limit is None else min(count, self.sample_limit)

    # --- Lightning hooks ----------------------------------------------------------------------
    def setup(self, stage: str | None = None) -> None:
        if self.splits:  # every stage shares one copy of the data
            return
        if self.shared_dir is None:
            self.splits = self.build_splits()
        else:  # the splits, and what the module learnt making them (state_dict: say, pixel statistics)
            shared = shared_data(self.shared_dir, self.data_key(), self.build_shareable)
            self.splits = {name: tuple(tensors) for name, tensors in shared["splits"].items()}
            self.load_state_dict(shared["state"])
        for name, (inputs, _) in self.splits.items():
            self.check_shape(name, inputs)
        if self.batch_size > len(self.splits["train"][0]):
            log.warning(
                "data.batch_size=%d is larger than the %d training samples: every epoch is one batch of them all.",
                self.batch_size,
                len(self.splits["train"][0]),
            )
        log.info("Data: %s", ", ".join(f"{name} {len(t)}" for name, (t, _) in self.splits.items()))

    def train_dataloader(self) -> TensorLoader:
        return self.loader("train", self.per_device_batch_size(self.batch_size), shuffle=True)

    def val_dataloader(self) -> TensorLoader:
        return self.loader("val", self.eval_batch_size, shuffle=False)

    def test_dataloader(self) -> TensorLoader:
        return self.loader("test", self.eval_batch_size, shuffle=False)

    def predict_dataloader(self) -> TensorLoader:
        return self.test_dataloader()

    def build_splits(self) -> dict[str, Split]:
        train, val = self.split_pool(*self.within_limit(self.load_train_pool(), pool=True))
        return {"train": train, "val": val, "test": self.within_limit(self.load_test())}

    def within_limit(self, split: Split, pool: bool = False) -> Split:
        """The first samples of a split under a sample limit; a pool keeps enough for training and validation."""
        if self.sample_limit is None:
            return split
        inputs, targets = split
        held_out = self.validation_size() if self.num_folds is None else len(inputs) // self.num_folds
        keep = self.limited(len(inputs) - held_out) + self.limited(held_out) if pool else self.limited(len(inputs))
        return inputs[:keep], targets[:keep]

    def validation_size(self) -> int:
        """How many samples the validation carve takes: `num_val`, or fewer under a sample limit."""
        return self.limited(self.num_val)

    def build_shareable(self) -> dict:
        splits = self.build_splits()
        return {"splits": {name: list(tensors) for name, tensors in splits.items()}, "state": self.state_dict()}

    def data_key(self) -> str:
        """Names the data this module makes: its class and its settings (the seed as drawn), but the loader's."""
        settings = {
            key: value
            for key, value in vars(self).items()
            if not key.startswith("_") and key not in ("splits", "shared_dir") and isinstance(value, SETTING_TYPES)
        }
        return data_key({"class": f"{type(self).__module__}.{type(self).__qualname__}", **settings})

    def pixel_normalization(self) -> tuple[float, float] | None:
        """(mean, std) that images scaled to [0, 1] are standardised with before the model sees them.

        None: inputs are used as loaded. trainlab-predict applies the same to image files, so a
        subclass that standardises its images says how here.
        """
        return None

    # --- helpers ------------------------------------------------------------------------------
    def split_pool(self, inputs: torch.Tensor, targets: torch.Tensor) -> tuple[Split, Split]:
        """The (train, val) splits of the pool: a seeded carve or one of K folds, then ``train_size``."""
        if self.num_folds is None:
            train, val = self.carve_validation(len(inputs))
        else:
            stratify_by = targets if self.task == "classification" else None
            train, val = fold_indices(len(inputs), self.num_folds, self.fold, self.seed, stratify_by)
        train = train[: self.check_train_size(len(train))]
        return (inputs[train], targets[train]), (inputs[val], targets[val])

    def check_train_size(self, available: int) -> int:
        """How many training samples to keep: ``train_size``, or all when it is null."""
        if self.train_size is None:
            return available
        if self.train_size > available:
            raise ValueError(
                f"data.train_size={self.train_size} is more than the {available} training samples left after the "
                f"validation split; use at most {available}, or null for all."
            )
        return self.train_size

    def carve_validation(self, pool_size: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(train, val) indices: ``num_val`` samples for validation, by a permutation seeded with ``seed``."""
        num_val = self.validation_size()
        if not 0 < num_val < pool_size:
            raise ValueError(
                f"data.num_val={self.num_val} must be between 1 and the pool size minus one ({pool_size - 1})."
            )
        order = torch.randperm(pool_size, generator=torch.Generator().manual_seed(self.seed))
        return order[num_val:], order[:num_val]

    def check_shape(self, split: str, inputs: torch.Tensor) -> None:
        if tuple(inputs.shape[1:]) != self.input_shape:
            raise ValueError(
                f"{type(self).__name__} {split} inputs have shape {list(inputs.shape[1:])} "
                f"but data.input_shape is {list(self.input_shape)}."
            )

    def world(self) -> tuple[int, int]:
        """(rank, world size) of this process; (0, 1) outside distributed training."""
        trainer = self.trainer
        if trainer is None:
            return 0, 1
        return trainer.global_rank, trainer.world_size

    def per_device_batch_size(self, batch_size: int) -> int:
        """data.batch_size is the global batch: each of N processes takes batch_size / N."""
        _, world_size = self.world()
        if batch_size % world_size:  # trainlab checks this before the run where trainer.devices is a number
            nearest = max(world_size, batch_size // world_size * world_size)
            raise ValueError(
                f"data.batch_size={batch_size} does not divide evenly across {world_size} processes; "
                f"use a multiple of {world_size}, e.g. data.batch_size={nearest}."
            )
        return batch_size // world_size

    def loader(self, split: str, batch_size: int, shuffle: bool) -> TensorLoader:
        if not self.splits:
            self.setup()
        if self.trainer is not None:  # moved once, so that every epoch slices its batches on the device
            self.splits[split] = place(self.splits[split], self.trainer.strategy.root_device)
        inputs, targets = self.splits[split]
        rank, world_size = self.world()
        order = EpochOrder(len(inputs), shuffle, self.seed, rank, world_size, equal_shards=shuffle)
        return TensorLoader((inputs, targets), batch_size, order)
