"""A single linear layer on the flattened input: linear regression or, with cross entropy, logistic regression."""

import math
from collections.abc import Sequence

import torch
from torch import nn


class Linear(nn.Module):
    """y = flatten(x) @ W^T + b."""

    def __init__(self, input_shape: Sequence[int], num_outputs: int) -> None:
        super().__init__()
        self.input_shape = tuple(input_shape)
        self.num_outputs = num_outputs
        self.layer = nn.Linear(math.prod(self.input_shape), num_outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layer(x.flatten(start_dim=1))
