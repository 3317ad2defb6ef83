"""Weight penalties: what they sum, what they skip, and how they scale."""

import torch
from torch import nn

from trainlab.nets.cnn import CNN
from trainlab.regularizers import WeightPenalty, penalized_weights


def test_penalty_skips_biases_and_normalisation_parameters() -> None:
    net = CNN(input_shape=(1, 28, 28), num_outputs=10, channels=(4, 8), batch_norm=True)
    shapes = [tuple(p.shape) for p in penalized_weights(net)]
    assert all(len(shape) > 1 for shape in shapes)
    assert len(shapes) == 4  # two conv kernels, hidden and output weight matrices


def test_l1_and_l2_values() -> None:
    layer = nn.Linear(2, 1)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[3.0, -4.0]]))
        layer.bias.fill_(100.0)  # must not count
    assert WeightPenalty(l1=0.5)(layer).item() == 0.5 * 7
    assert WeightPenalty(l2=0.5)(layer).item() == 0.5 * 0.5 * 25
    assert WeightPenalty(l1=0.5, l2=0.5)(layer).item() == 0.5 * 7 + 0.25 * 25


def test_l2_penalty_equals_sgd_weight_decay_on_weights() -> None:
    torch.manual_seed(0)
    x, y = torch.randn(32, 5), torch.randn(32, 1)
    a, b = nn.Linear(5, 1, bias=False), nn.Linear(5, 1, bias=False)
    b.load_state_dict(a.state_dict())
    penalty = WeightPenalty(l2=0.1)
    opt_a = torch.optim.SGD(a.parameters(), lr=0.05)
    opt_b = torch.optim.SGD(b.parameters(), lr=0.05, weight_decay=0.1)
    for _ in range(5):
        opt_a.zero_grad(), opt_b.zero_grad()
        (nn.functional.mse_loss(a(x), y) + penalty(a)).backward()
        nn.functional.mse_loss(b(x), y).backward()
        opt_a.step(), opt_b.step()
    torch.testing.assert_close(a.weight, b.weight)
