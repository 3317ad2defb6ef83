"""Backpropagation checked: autograd gradients agree with finite differences (float64) for every net and penalty.

Each check differentiates a scalar training objective with respect to the network's parameters and
its input, so the chain rule through every layer is compared with (J(theta + eps) - J(theta - eps)) / 2 eps.
"""

from collections.abc import Callable

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from trainlab.nets.cnn import CNN
from trainlab.nets.linear import Linear
from trainlab.nets.mlp import MLP
from trainlab.regularizers import WeightPenalty


def as_function_of_parameters(module: nn.Module, objective: Callable[[nn.Module], torch.Tensor]):
    """(parameters..., ) -> objective(module with those parameters), the form gradcheck differentiates."""
    names = [f"module.{name}" for name, _ in module.named_parameters()]  # as seen from _Objective

    def function(*parameters: torch.Tensor) -> torch.Tensor:
        return functional_call(_Objective(module, objective), dict(zip(names, parameters, strict=True)), ())

    return function


class _Objective(nn.Module):
    """Wraps a module so that functional_call can swap its parameters while ``objective`` runs."""

    def __init__(self, module: nn.Module, objective: Callable[[nn.Module], torch.Tensor]) -> None:
        super().__init__()
        self.module = module
        self.objective = objective

    def forward(self) -> torch.Tensor:
        return self.objective(self.module)


def parameters_of(module: nn.Module) -> tuple[torch.Tensor, ...]:
    return tuple(p.detach().clone().requires_grad_(True) for p in module.parameters())


NETS = {
    # A small CNN (two conv blocks, batch norm, hidden layer): every kind of layer the config offers.
    "cnn": lambda: CNN(
        input_shape=(1, 6, 6), num_outputs=3, channels=(2, 3), kernel_size=3, padding=1, batch_norm=True, hidden=4
    ),
    "mlp": lambda: MLP(input_shape=(6,), num_outputs=3, hidden=(5, 4)),
    "linear": lambda: Linear(input_shape=(6,), num_outputs=3),
}


@pytest.mark.parametrize("name", sorted(NETS))
def test_network_gradients_match_finite_differences(name: str) -> None:
    torch.manual_seed(0)
    net = NETS[name]().double()
    inputs = torch.randn(4, *net.input_shape, dtype=torch.float64)
    targets = torch.randint(0, 3, (4,))

    def loss(module: nn.Module) -> torch.Tensor:
        return F.cross_entropy(module(inputs), targets)

    # Every parameter entry is perturbed one at a time, except for the CNN: there a finite difference
    # along random directions (fast mode) keeps the check to seconds on a busy CPU.
    fast = name == "cnn"
    assert torch.autograd.gradcheck(as_function_of_parameters(net, loss), parameters_of(net), fast_mode=fast)
    # And with respect to the input: the gradient backpropagated all the way through.
    assert torch.autograd.gradcheck(
        lambda x: F.cross_entropy(net(x), targets), (inputs.clone().requires_grad_(True),), fast_mode=fast
    )


PENALTIES = {
    "l1": WeightPenalty(l1=0.3),
    "l2": WeightPenalty(l2=0.7),
    "elastic_net": WeightPenalty(l1=0.3, l2=0.7),
}


@pytest.mark.parametrize("name", sorted(PENALTIES))
def test_penalty_gradients_match_finite_differences(name: str) -> None:
    torch.manual_seed(0)
    net = MLP(input_shape=(6,), num_outputs=3, hidden=(5,)).double()
    with torch.no_grad():
        for weight in net.parameters():
            # |w| has no derivative at 0: keep every entry at least 0.1 away from it (eps is 1e-6).
            weight.copy_(weight.sign() * (weight.abs() + 0.1))
    penalty = PENALTIES[name]
    assert torch.autograd.gradcheck(as_function_of_parameters(net, penalty), parameters_of(net))


def test_gradcheck_catches_a_wrong_gradient() -> None:
    """The check itself can fail: a function whose backward is deliberately off by a factor is refused."""

    class WrongSquare(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x: torch.Tensor) -> torch.Tensor:
            ctx.save_for_backward(x)
            return x.pow(2).sum()

        @staticmethod
        def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
            (x,) = ctx.saved_tensors
            return grad * 3 * x  # should be 2 * x

    x = torch.randn(5, dtype=torch.float64, requires_grad=True)
    assert not torch.autograd.gradcheck(WrongSquare.apply, (x,), raise_exception=False)


@pytest.mark.slow
def test_cnn_gradients_match_finite_differences_entry_by_entry() -> None:
    """The CNN check above without fast mode: every parameter entry perturbed on its own (about 20 s)."""
    torch.manual_seed(0)
    net = NETS["cnn"]().double()
    inputs = torch.randn(4, *net.input_shape, dtype=torch.float64)
    targets = torch.randint(0, 3, (4,))
    loss = lambda module: F.cross_entropy(module(inputs), targets)  # noqa: E731
    assert torch.autograd.gradcheck(as_function_of_parameters(net, loss), parameters_of(net))
