"""Networks size themselves from the input shape."""

import pytest
import torch

from trainlab.nets.cnn import CNN
from trainlab.nets.linear import Linear
from trainlab.nets.mlp import MLP


@pytest.mark.parametrize("shape", [(1, 28, 28), (3, 32, 32), (1, 20, 36)])
def test_cnn_computes_its_flattened_size(shape: tuple[int, int, int]) -> None:
    net = CNN(input_shape=shape, num_outputs=10, channels=(32, 64), kernel_size=3)
    assert net(torch.zeros(2, *shape)).shape == (2, 10)


def test_cnn_options_change_the_network() -> None:
    plain = CNN((1, 28, 28), 10, channels=(8,), hidden=0)
    fancy = CNN((1, 28, 28), 10, channels=(8,), batch_norm=True, dropout=0.5, hidden=16)
    assert not any(isinstance(m, torch.nn.BatchNorm2d | torch.nn.Dropout) for m in plain.modules())
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in fancy.modules())
    assert any(isinstance(m, torch.nn.Dropout) for m in fancy.modules())


def test_cnn_refuses_too_many_blocks_for_the_image() -> None:
    with pytest.raises(ValueError, match=r"CNN conv blocks do not fit input_shape=\[1, 8, 8\]"):
        CNN((1, 8, 8), 10, channels=(8, 8, 8, 8))


def test_cnn_needs_one_kernel_size_per_block() -> None:
    with pytest.raises(ValueError, match="CNN kernel_size has 3 entries but channels has 2; give one per block."):
        CNN((1, 28, 28), 10, channels=(8, 8), kernel_size=(3, 3, 3))


def test_mlp_and_linear_flatten_any_input() -> None:
    assert MLP((1, 28, 28), 10, hidden=(16,))(torch.zeros(4, 1, 28, 28)).shape == (4, 10)
    assert Linear((8,), 1)(torch.zeros(4, 8)).shape == (4, 1)
