"""experiment=linear_gd: hand-written full-batch gradient descent equals torch.optim.SGD and finds w*, b*."""

import copy

import lightning.pytorch as pl
import torch
from hydra.utils import instantiate

from tests.trainlab.plain_run import QUIET
from trainlab.models.gradient_descent import GradientDescentRegression

STEPS = 5


class ParameterRecorder(pl.Callback):
    """Keeps a copy of the parameters after every training step."""

    def __init__(self) -> None:
        self.history: list[list[torch.Tensor]] = []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.history.append([p.detach().clone() for p in pl_module.parameters()])


def test_linear_gd_matches_torch_sgd_step_for_step(compose_train) -> None:
    cfg = compose_train(
        "experiment=linear_gd",
        "data.num_train=300",
        "data.num_val=50",
        "data.num_test=50",
        f"trainer.max_epochs={STEPS}",
    )
    datamodule, model = instantiate(cfg.data), instantiate(cfg.model)
    assert isinstance(model, GradientDescentRegression)
    reference = copy.deepcopy(model.net)  # same starting point
    recorder = ParameterRecorder()
    instantiate(cfg.trainer, callbacks=[recorder], **QUIET).fit(model, datamodule=datamodule)
    assert len(recorder.history) == STEPS  # full batch: one step per epoch

    # The same steps with PyTorch's own optimizer, built from the same optimizer config (optimizer=gd).
    sgd = instantiate(cfg.optimizer)(params=reference.parameters())
    assert isinstance(sgd, torch.optim.SGD) and sgd.param_groups[0]["momentum"] == 0
    inputs, targets = datamodule.splits["train"]
    start = [p.detach().clone() for p in reference.parameters()]
    for step in range(STEPS):
        sgd.zero_grad()
        torch.nn.functional.mse_loss(reference(inputs), targets).backward()
        sgd.step()
        for ours, theirs in zip(recorder.history[step], reference.parameters(), strict=True):
            # The loader shuffles the full batch, which only reorders the sum: float32 rounding, no more.
            torch.testing.assert_close(ours, theirs.detach(), rtol=1e-5, atol=1e-6)
    assert not torch.equal(start[0], recorder.history[-1][0])  # it did move


def test_linear_gd_converges_to_the_true_weights(compose_train) -> None:
    cfg = compose_train("experiment=linear_gd")
    datamodule, model = instantiate(cfg.data), instantiate(cfg.model)
    instantiate(cfg.trainer, **QUIET).fit(model, datamodule=datamodule)
    layer = model.net.layer
    # The noise (std 0.1 over 2,000 samples) leaves an estimation error of about 0.003 per weight.
    torch.testing.assert_close(layer.weight.detach().squeeze(0), datamodule.true_weight, atol=0.01, rtol=0)
    torch.testing.assert_close(layer.bias.detach().squeeze(0), datamodule.true_bias, atol=0.01, rtol=0)
