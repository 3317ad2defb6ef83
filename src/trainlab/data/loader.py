"""Batches from in-memory tensors by index slicing: no per-sample __getitem__, no collate.

A DataLoader over a TensorDataset builds every batch from single samples in Python; on small
models that bookkeeping costs as much as the model. Here one epoch is one permutation and each
batch is a single indexing operation per tensor.
"""

from collections.abc import Iterator

import torch


class EpochOrder:
    """The sample order of one epoch: a seeded permutation (or 0..n-1), sharded by process rank.

    Lightning calls ``set_epoch`` at the start of every epoch, so each epoch gets a fresh order
    that depends only on (seed, epoch): a resumed run sees the same order as an uninterrupted one.
    """

    def __init__(
        self,
        num_samples: int,
        shuffle: bool,
        seed: int,
        rank: int = 0,
        world_size: int = 1,
        equal_shards: bool = False,
    ) -> None:
        self.num_samples = num_samples
        self.shuffle = shuffle
        self.seed = seed
        self.rank = rank
        self.world_size = world_size
        # Training needs the same number of batches on every rank (gradients are averaged in
        # lock-step), so the tail that doesn't divide evenly is left out. Evaluation keeps all samples.
        self.equal_shards = equal_shards
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        if self.equal_shards:
            return self.num_samples // self.world_size
        return len(range(self.rank, self.num_samples, self.world_size))

    def indices(self) -> torch.Tensor:
        if self.shuffle:
            generator = torch.Generator().manual_seed(self.seed + self.epoch)
            order = torch.randperm(self.num_samples, generator=generator)
        else:
            order = torch.arange(self.num_samples)
        if self.equal_shards:
            order = order[: len(self) * self.world_size]
        return order[self.rank :: self.world_size]


class TensorLoader:
    """Iterates over (inputs, targets) batches of in-memory tensors in the order given by an EpochOrder."""

    def __init__(self, tensors: tuple[torch.Tensor, ...], batch_size: int, order: EpochOrder) -> None:
        self.tensors = tensors
        self.batch_size = batch_size
        # Lightning looks for `sampler.set_epoch` to start each epoch, and for `batch_sampler`.
        self.sampler = order
        self.batch_sampler = None

    def __len__(self) -> int:
        return -(-len(self.sampler) // self.batch_size)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, ...]]:
        order = self.sampler
        contiguous = not order.shuffle and order.world_size == 1
        indices = None if contiguous else order.indices().to(self.tensors[0].device)
        for start in range(0, len(order), self.batch_size):
            stop = start + self.batch_size
            if contiguous:
                yield tuple(t[start:stop] for t in self.tensors)
            else:
                batch = indices[start:stop]
                yield tuple(t[batch] for t in self.tensors)
