"""Convolutional classifier: conv blocks (conv, optional batch norm, ReLU, 2x2 max pool), then a dense head."""

from collections.abc import Sequence

import torch
from torch import nn


class CNN(nn.Module):
    """A stack of conv blocks and a classifier head sized from the configured input shape."""

    def __init__(
        self,
        input_shape: Sequence[int],
        num_outputs: int,
        channels: Sequence[int] = (32, 64),
        kernel_size: int | Sequence[int] = 3,
        padding: int = 0,
        batch_norm: bool = False,
        hidden: int = 128,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if len(input_shape) != 3:
            raise ValueError(
                f"CNN needs image input shaped (channels, height, width), got input_shape={list(input_shape)}; "
                "use model=mlp or model=logistic for feature vectors."
            )
        self.input_shape = tuple(input_shape)
        self.num_outputs = num_outputs
        kernel_sizes = _per_block(kernel_size, len(channels))
        blocks: list[nn.Module] = []
        in_channels = self.input_shape[0]
        for out_channels, size in zip(channels, kernel_sizes, strict=True):
            blocks.append(nn.Conv2d(in_channels, out_channels, size, padding=padding, bias=not batch_norm))
            if batch_norm:
                blocks.append(nn.BatchNorm2d(out_channels))
            blocks += [nn.ReLU(), nn.MaxPool2d(2)]
            in_channels = out_channels
        self.features = nn.Sequential(*blocks)
        self.head = self._make_head(self._flat_size(), num_outputs, hidden, dropout)

    def _flat_size(self) -> int:
        """Feature size after the conv blocks, found by passing one dummy input through them."""
        with torch.no_grad():
            try:
                out = self.features(torch.zeros(1, *self.input_shape))
            except RuntimeError:
                raise ValueError(
                    f"CNN conv blocks do not fit input_shape={list(self.input_shape)}: "
                    "use fewer blocks, smaller kernels or padding."
                ) from None
        return out.numel()

    @staticmethod
    def _make_head(flat_size: int, num_outputs: int, hidden: int, dropout: float) -> nn.Sequential:
        layers: list[nn.Module] = [nn.Flatten()]
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        if hidden > 0:
            layers += [nn.Linear(flat_size, hidden), nn.ReLU()]
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            flat_size = hidden
        layers.append(nn.Linear(flat_size, num_outputs))
        return nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def _per_block(value: int | Sequence[int], num_blocks: int) -> list[int]:
    """One kernel size for every block, or a list with one per block."""
    if isinstance(value, int):
        return [value] * num_blocks
    sizes = list(value)
    if len(sizes) != num_blocks:
        raise ValueError(f"CNN kernel_size has {len(sizes)} entries but channels has {num_blocks}; give one per block.")
    return sizes
