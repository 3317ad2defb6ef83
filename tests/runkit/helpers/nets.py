"""A net from outside the packages trainlab trusts by default, as a researcher's third-party library would be."""

import math
from collections.abc import Sequence

import torch
from torch import nn


class TinyNet(nn.Module):
    def __init__(self, input_shape: Sequence[int], num_outputs: int) -> None:
        super().__init__()
        self.num_outputs = num_outputs
        self.layer = nn.Linear(math.prod(input_shape), num_outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layer(x.flatten(start_dim=1))


class Other(TinyNet):
    """Another class of the same module: trusting TinyNet by name does not trust it."""
