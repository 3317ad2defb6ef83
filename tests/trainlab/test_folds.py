"""k-fold cross-validation and train_size in the base datamodule: every datamodule gets them."""

import pytest
import torch

from trainlab.data.folds import assign_folds, fold_indices
from trainlab.data.synthetic import SyntheticClassificationDataModule, SyntheticRegressionDataModule


def rows(inputs: torch.Tensor) -> set[tuple[float, ...]]:
    """Samples as hashable rows, to compare splits by content."""
    return {tuple(row.tolist()) for row in inputs}


def fold_datamodules(num_folds: int, seed: int = 3, cls: type = SyntheticClassificationDataModule) -> list:
    modules = []
    for fold in range(num_folds):
        dm = cls(num_train=230, num_val=20, num_test=40, seed=seed, num_folds=num_folds, fold=fold)
        dm.setup()
        modules.append(dm)
    return modules


def test_folds_are_disjoint_cover_the_pool_and_train_on_the_rest() -> None:
    labels = torch.arange(103) % 7
    vals = [fold_indices(103, 5, fold, seed=1, stratify_by=labels) for fold in range(5)]
    all_val = torch.cat([val for _, val in vals])
    assert sorted(all_val.tolist()) == list(range(103))  # disjoint and covering
    for train, val in vals:
        assert sorted(torch.cat([train, val]).tolist()) == list(range(103))
        assert len(val) in (20, 21)  # folds of equal size, to within one sample


def test_folds_keep_class_proportions_within_one_sample() -> None:
    # Unbalanced classes: 50, 30, 17 and 6 samples.
    labels = torch.cat([torch.full((n,), c) for c, n in enumerate([50, 30, 17, 6])])
    labels = labels[torch.randperm(len(labels), generator=torch.Generator().manual_seed(0))]
    fold_of = assign_folds(len(labels), 4, seed=2, stratify_by=labels)
    for cls in range(4):
        per_fold = torch.bincount(fold_of[labels == cls], minlength=4)
        assert per_fold.max() - per_fold.min() <= 1, (cls, per_fold.tolist())


def test_same_seed_same_folds_other_seed_other_folds() -> None:
    labels = torch.arange(60) % 3
    assert torch.equal(assign_folds(60, 5, 7, labels), assign_folds(60, 5, 7, labels))
    assert not torch.equal(assign_folds(60, 5, 7, labels), assign_folds(60, 5, 8, labels))


def test_datamodule_folds_partition_the_pool_and_never_touch_the_test_set() -> None:
    modules = fold_datamodules(5)
    pool = rows(modules[0].splits["train"][0]) | rows(modules[0].splits["val"][0])
    assert len(pool) == 250
    val_folds = [rows(dm.splits["val"][0]) for dm in modules]
    assert sum(len(fold) for fold in val_folds) == 250 and set().union(*val_folds) == pool
    for dm, val in zip(modules, val_folds, strict=True):
        assert rows(dm.splits["train"][0]) == pool - val
        assert torch.equal(dm.splits["test"][0], modules[0].splits["test"][0])
        assert not rows(dm.splits["test"][0]) & pool
        # Each class is spread evenly: a fold holds floor or ceil of (class count / 5) of it.
        pool_counts = torch.bincount(torch.cat([dm.splits["train"][1], dm.splits["val"][1]]), minlength=4)
        val_counts = torch.bincount(dm.splits["val"][1], minlength=4)
        assert ((val_counts - pool_counts / 5).abs() < 1).all(), (val_counts.tolist(), pool_counts.tolist())


def test_same_seed_gives_the_same_fold_data() -> None:
    first, second = fold_datamodules(3)[1], fold_datamodules(3)[1]
    assert torch.equal(first.splits["val"][0], second.splits["val"][0])
    assert torch.equal(first.splits["train"][1], second.splits["train"][1])


def test_regression_data_is_split_into_plain_folds() -> None:
    modules = fold_datamodules(4, cls=SyntheticRegressionDataModule)
    val_folds = [rows(dm.splits["val"][0]) for dm in modules]
    assert sorted(len(fold) for fold in val_folds) == [62, 62, 63, 63]
    assert len(set().union(*val_folds)) == 250


def test_train_size_keeps_the_first_samples_of_the_training_split() -> None:
    full = SyntheticClassificationDataModule(num_train=300, num_val=100, num_test=50, seed=1)
    small = SyntheticClassificationDataModule(num_train=300, num_val=100, num_test=50, seed=1, train_size=64)
    full.setup()
    small.setup()
    assert torch.equal(small.splits["train"][0], full.splits["train"][0][:64])
    assert torch.equal(small.splits["val"][0], full.splits["val"][0])  # validation and test unchanged
    assert torch.equal(small.splits["test"][0], full.splits["test"][0])


def test_train_size_larger_than_the_training_split_is_refused_with_the_limit() -> None:
    dm = SyntheticClassificationDataModule(num_train=100, num_val=20, train_size=500)
    with pytest.raises(ValueError) as error:
        dm.setup()
    assert str(error.value) == (
        "data.train_size=500 is more than the 100 training samples left after the validation split; "
        "use at most 100, or null for all."
    )


def test_train_size_applies_within_a_fold() -> None:
    dm = SyntheticClassificationDataModule(num_train=180, num_val=20, num_folds=4, fold=2, train_size=100)
    dm.setup()
    assert len(dm.splits["train"][1]) == 100 and len(dm.splits["val"][1]) == 50
