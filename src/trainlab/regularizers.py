"""Explicit weight penalties (L1, L2, elastic net) added to the training loss.

The total training objective is ``mean data loss + penalty`` with
``penalty = l1 * sum|w| + l2 / 2 * sum w^2`` over weight matrices and kernels only: biases and
normalisation parameters (all 1-D) are left alone. The factor 1/2 makes the L2 gradient ``l2 * w``,
so ``l2`` means the same as plain SGD's ``weight_decay``.
"""

import torch
from torch import nn


class WeightPenalty:
    """L1 / L2 / elastic-net penalty on a module's weights."""

    def __init__(self, l1: float = 0.0, l2: float = 0.0) -> None:
        self.l1 = l1
        self.l2 = l2

    def __call__(self, module: nn.Module) -> torch.Tensor:
        weights = penalized_weights(module)
        penalty = weights[0].new_zeros(())
        for weight in weights:
            if self.l1:
                penalty = penalty + self.l1 * weight.abs().sum()
            if self.l2:
                penalty = penalty + 0.5 * self.l2 * weight.pow(2).sum()
        return penalty

    def __repr__(self) -> str:
        return f"WeightPenalty(l1={self.l1}, l2={self.l2})"


def penalized_weights(module: nn.Module) -> list[torch.Tensor]:
    """The parameters a penalty applies to: those with two or more dimensions (weights, kernels)."""
    return [p for p in module.parameters() if p.requires_grad and p.ndim > 1]
