"""k-fold cross-validation: which samples of the training pool form each fold.

Fold membership comes from one seeded permutation of the pool, so the K runs of a k-fold
multirun (same seed, fold 0..K-1) see disjoint validation folds that together cover the pool.
For classification the permutation is grouped by class before the folds are dealt out in turn,
so every fold holds each class in the same proportion as the pool, to within one sample.
"""

import torch


def assign_folds(pool_size: int, num_folds: int, seed: int, stratify_by: torch.Tensor | None = None) -> torch.Tensor:
    """The fold number (0..num_folds-1) of every sample of the pool, dealt out from a seeded permutation."""
    if num_folds > pool_size:
        raise ValueError(
            f"data.num_folds={num_folds} is more than the {pool_size} samples of the training pool; use fewer folds."
        )
    order = torch.randperm(pool_size, generator=torch.Generator().manual_seed(seed))
    if stratify_by is not None:
        # Group the shuffled samples by class (a stable sort keeps the shuffle within each class),
        # so dealing them out in turn spreads every class evenly over the folds.
        order = order[torch.sort(stratify_by[order], stable=True).indices]
    fold_of = torch.empty(pool_size, dtype=torch.long)
    fold_of[order] = torch.arange(pool_size) % num_folds
    return fold_of


def fold_indices(
    pool_size: int, num_folds: int, fold: int, seed: int, stratify_by: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """(train, val) indices into the pool: fold ``fold`` is validation, the other folds are training.

    Both come in the order of a seeded permutation, so the first N training samples (``train_size``)
    are a random subset and not, say, one class.
    """
    fold_of = assign_folds(pool_size, num_folds, seed, stratify_by)
    shuffled = torch.randperm(pool_size, generator=torch.Generator().manual_seed(seed))
    in_fold = fold_of[shuffled] == fold
    return shuffled[~in_fold], shuffled[in_fold]
