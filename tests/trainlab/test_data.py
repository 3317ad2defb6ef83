"""Datamodules: seeded splits, batches by slicing, sharding across processes."""

import pytest
import torch

from trainlab.data.loader import EpochOrder, TensorLoader
from trainlab.data.synthetic import (
    SyntheticClassificationDataModule,
    SyntheticImagesDataModule,
    SyntheticRegressionDataModule,
)
from trainlab.data.tensor_datamodule import TensorDataModule


def test_loader_serves_every_sample_once_per_epoch_in_a_new_order() -> None:
    inputs, targets = torch.arange(10).float().unsqueeze(1), torch.arange(10)
    loader = TensorLoader((inputs, targets), batch_size=4, order=EpochOrder(10, shuffle=True, seed=0))
    assert len(loader) == 3
    epoch0 = torch.cat([y for _, y in loader])
    loader.sampler.set_epoch(1)
    epoch1 = torch.cat([y for _, y in loader])
    assert sorted(epoch0.tolist()) == sorted(epoch1.tolist()) == list(range(10))
    assert epoch0.tolist() != epoch1.tolist()
    loader.sampler.set_epoch(0)
    assert torch.cat([y for _, y in loader]).tolist() == epoch0.tolist()  # order depends only on (seed, epoch)


def test_unshuffled_loader_keeps_inputs_and_targets_aligned() -> None:
    inputs, targets = torch.arange(7).float().unsqueeze(1) * 10, torch.arange(7)
    loader = TensorLoader((inputs, targets), batch_size=3, order=EpochOrder(7, shuffle=False, seed=0))
    batches = list(loader)
    assert [len(y) for _, y in batches] == [3, 3, 1]
    for x, y in batches:
        assert torch.equal(x.squeeze(1), y.float() * 10)


def test_training_shards_are_disjoint_and_equal_across_ranks() -> None:
    shards = [EpochOrder(11, shuffle=True, seed=3, rank=r, world_size=2, equal_shards=True).indices() for r in range(2)]
    assert len(shards[0]) == len(shards[1]) == 5
    assert not set(shards[0].tolist()) & set(shards[1].tolist())


def test_evaluation_shards_cover_every_sample_exactly_once() -> None:
    shards = [EpochOrder(11, shuffle=False, seed=0, rank=r, world_size=2).indices() for r in range(2)]
    assert sorted(torch.cat(shards).tolist()) == list(range(11))


def test_splits_have_the_configured_sizes_and_are_disjoint() -> None:
    dm = SyntheticClassificationDataModule(num_train=300, num_val=100, num_test=50, seed=1)
    dm.setup()
    sizes = {name: len(y) for name, (_, y) in dm.splits.items()}
    assert sizes == {"train": 300, "val": 100, "test": 50}
    train_rows = {tuple(row.tolist()) for row in dm.splits["train"][0]}
    assert not train_rows & {tuple(row.tolist()) for row in dm.splits["val"][0]}


@pytest.mark.parametrize(
    "cls", [SyntheticImagesDataModule, SyntheticClassificationDataModule, SyntheticRegressionDataModule]
)
def test_same_seed_same_data_other_seed_other_data(cls: type) -> None:
    def train_inputs(seed: int) -> torch.Tensor:
        dm = cls(num_train=64, num_val=16, num_test=16, seed=seed)
        dm.setup()
        return dm.splits["train"][0]

    assert torch.equal(train_inputs(5), train_inputs(5))
    assert not torch.equal(train_inputs(5), train_inputs(6))


def test_synthetic_images_look_like_mnist() -> None:
    dm = SyntheticImagesDataModule(num_train=500, num_val=100, num_test=100, seed=0)
    dm.setup()
    images, labels = dm.splits["train"]
    assert images.shape == (500, 1, 28, 28) and images.dtype == torch.float32
    assert labels.dtype == torch.int64 and set(labels.unique().tolist()) == set(range(10))
    assert abs(images.mean().item()) < 0.1 and abs(images.std().item() - 1) < 0.1  # standardised


def test_global_batch_size_is_split_across_processes() -> None:
    dm = SyntheticImagesDataModule(batch_size=64)
    dm.world = lambda: (0, 4)
    assert dm.per_device_batch_size(64) == 16
    with pytest.raises(
        ValueError,
        match=r"data.batch_size=64 does not divide evenly across 3 processes; use a multiple of 3, e.g. data.batch_size=63.",
    ):
        dm.world = lambda: (0, 3)
        dm.per_device_batch_size(64)


class CountingDataModule(TensorDataModule):
    """A datamodule over fixed tensors (as one reading files is): 1,000 pool samples and 500 test samples."""

    def load_train_pool(self) -> tuple[torch.Tensor, torch.Tensor]:
        return torch.arange(1000.0).unsqueeze(1), torch.zeros(1000, dtype=torch.long)

    def load_test(self) -> tuple[torch.Tensor, torch.Tensor]:
        return torch.arange(500.0).unsqueeze(1), torch.zeros(500, dtype=torch.long)


def split_sizes(datamodule: TensorDataModule) -> dict[str, int]:
    datamodule.setup("fit")
    return {name: len(inputs) for name, (inputs, _) in datamodule.splits.items()}


@pytest.mark.parametrize(("fast_dev_run", "size"), [(True, 64), (3, 192), (False, None)])
def test_data_read_whole_is_cut_to_what_a_fast_dev_run_takes(fast_dev_run: bool | int, size: int | None) -> None:
    datamodule = CountingDataModule(input_shape=[1], batch_size=32, eval_batch_size=64, num_val=100)
    datamodule.only_what_a_fast_dev_run_uses(fast_dev_run)
    if size is None:  # not a fast_dev_run: everything, 100 of the pool carved for validation
        expected = {"train": 900, "val": 100, "test": 500}
    else:  # the batches it takes: a train batch is 32, an evaluation batch 64
        expected = {"train": size, "val": min(100, size), "test": size}
    assert split_sizes(datamodule) == expected
