"""The template's models as their configs build them: each trains on its data through trainlab/train.py, and the
net, the loss and the metrics are config lines."""

import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf
from torchmetrics.classification import MulticlassF1Score

from tests.trainlab.plain_run import fit_and_test

# Each model option with data it fits, and what it logs for every stage.
MODELS = {
    "cnn": ("synthetic_images", ["loss", "acc"]),
    "mlp": ("synthetic_classification", ["loss", "acc"]),
    "logistic": ("synthetic_classification", ["loss", "acc"]),
    "linear": ("synthetic_regression", ["loss", "mae"]),
    "linear_gd": ("synthetic_regression", ["loss", "mae"]),
}
SMALL_DATA = ["data.num_train=256", "data.num_val=64", "data.num_test=64"]


@pytest.mark.parametrize("model", sorted(MODELS))
def test_each_model_option_fits_and_tests_on_its_data(model: str, compose_train) -> None:
    data, metrics = MODELS[model]
    cfg = compose_train(f"model={model}", f"data={data}", *SMALL_DATA, "trainer.max_epochs=2")
    logged = fit_and_test(cfg)
    for stage in ("train", "val", "test"):
        for metric in metrics:
            assert torch.isfinite(torch.tensor(logged[f"{stage}/{metric}"])), (stage, metric, logged)


def batch_loss(cfg, inputs: torch.Tensor, targets: torch.Tensor) -> float:
    torch.manual_seed(0)  # the same initial weights for every config compared
    model = instantiate(cfg.model)
    with torch.no_grad():
        return float(model.loss(model(inputs), targets))


def test_the_loss_is_chosen_in_config(compose_train) -> None:
    inputs, targets = torch.randn(32, 1, 28, 28), torch.randint(0, 10, (32,))
    plain = compose_train()
    smoothed = compose_train("model.loss.label_smoothing=0.1")
    assert instantiate(smoothed.model).loss.label_smoothing == 0.1
    assert batch_loss(smoothed, inputs, targets) != pytest.approx(batch_loss(plain, inputs, targets))


def test_a_torchmetrics_metric_added_in_config_is_logged_for_every_stage(compose_train) -> None:
    f1 = "{_target_: torchmetrics.classification.MulticlassF1Score, num_classes: ${data.num_classes}}"
    cfg = compose_train("model=mlp", "data=synthetic_classification", *SMALL_DATA, f"+model.metrics.f1={f1}")
    assert isinstance(instantiate(cfg.model).val_metrics["f1"], MulticlassF1Score)
    logged = fit_and_test(cfg, max_epochs=1)
    assert {"train/f1", "val/f1", "test/f1", "val/acc"} <= set(logged)
    assert 0.0 <= logged["test/f1"] <= 1.0


def test_a_stock_sequential_net_in_config_trains(compose_train) -> None:
    cfg = compose_train("model=mlp", "data=synthetic_classification", *SMALL_DATA)
    # The shape a YAML file writes: torch.nn.Sequential's layers as a list of positional arguments.
    cfg.model.net = OmegaConf.create(
        {
            "_target_": "torch.nn.Sequential",
            "_args_": [
                {"_target_": "torch.nn.Linear", "in_features": "${data.input_shape[0]}", "out_features": 16},
                {"_target_": "torch.nn.ReLU"},
                {"_target_": "torch.nn.Linear", "in_features": 16, "out_features": "${data.num_classes}"},
            ],
        }
    )
    model = instantiate(cfg.model)
    assert isinstance(model.net, torch.nn.Sequential) and len(model.net) == 3
    assert 0.0 <= fit_and_test(cfg, max_epochs=1)["test/acc"] <= 1.0


def test_a_weight_penalty_chosen_in_config_is_added_to_the_training_loss(compose_train) -> None:
    cfg = compose_train("model=mlp", "data=synthetic_classification", *SMALL_DATA, "regularizer=l2")
    logged = fit_and_test(cfg, max_epochs=1)
    assert (logged["train/penalty"]) > 0
