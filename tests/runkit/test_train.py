"""Training through the real entry point: every model x data pair, run folders, TensorBoard, hyperparameters."""

from pathlib import Path

import pytest
import torch

from runkit.building import build_datamodule, build_model
from runkit.config import ConfigError
from runkit.runs.reading import read_scalars
from runkit.training import train
from tests.runkit.helpers.config import compose_config
from tests.runkit.helpers.tensorboard import read_hparam_columns, read_hparams

SMALL = ["data.num_train=256", "data.num_val=64", "data.num_test=64", "data.batch_size=32"]

COMPATIBLE = [
    ("cnn", "synthetic_images"),
    ("mlp", "synthetic_images"),
    ("logistic", "synthetic_images"),
    ("mlp", "synthetic_classification"),
    ("logistic", "synthetic_classification"),
    ("linear", "synthetic_regression"),
]


@pytest.mark.parametrize(("model", "data"), COMPATIBLE)
def test_every_compatible_pair_trains_with_fast_dev_run(model: str, data: str, run_dir: Path) -> None:
    cfg = compose_config("train", [f"model={model}", f"data={data}", "debug=fdr", *SMALL], run_dir)
    metrics = train(cfg)
    assert torch.isfinite(torch.tensor(metrics["test/loss"]))
    assert ("test/acc" in metrics) == (data != "synthetic_regression")


@pytest.mark.parametrize(
    ("model", "data", "message"),
    [
        (
            "linear",
            "synthetic_images",
            "model=linear is a regression model but data=synthetic_images is a classification dataset",
        ),
        (
            "cnn",
            "synthetic_regression",
            "model=cnn is a classification model but data=synthetic_regression is a regression dataset",
        ),
    ],
)
def test_model_for_another_task_is_refused(model: str, data: str, message: str, run_dir: Path) -> None:
    cfg = compose_config("train", [f"model={model}", f"data={data}", "debug=fdr"], run_dir)
    with pytest.raises(ConfigError, match=message):
        train(cfg)


def test_model_input_shape_that_does_not_fit_the_data_is_refused(run_dir: Path) -> None:
    cfg = compose_config("train", ["model.net.input_shape=[3,32,32]", "debug=fdr"], run_dir)
    with pytest.raises(
        ConfigError, match=r"model=cnn expects input_shape=\[3, 32, 32\] but data=synthetic_images gives \[1, 28, 28\]"
    ):
        train(cfg)


def test_cnn_on_feature_vectors_is_refused(run_dir: Path) -> None:
    cfg = compose_config("train", ["model=cnn", "data=synthetic_classification", "debug=fdr"], run_dir)
    with pytest.raises(
        Exception, match=r"CNN needs image input shaped \(channels, height, width\), got input_shape=\[20\]"
    ):
        train(cfg)


def test_linear_model_recovers_the_true_weights(run_dir: Path) -> None:
    cfg = compose_config(
        "train",
        [
            "model=linear",
            "data=synthetic_regression",
            "optimizer=sgd",
            "optimizer.lr=0.1",
            "trainer.max_epochs=10",
            "logger=none",
            "callbacks=none",
        ],
        run_dir,
    )
    datamodule = build_datamodule(cfg.data)
    from runkit.building import build_model, build_trainer

    model = build_model(cfg)
    build_trainer(cfg.trainer, [], []).fit(model, datamodule=datamodule)
    layer = model.net.layer
    # The noise (std 0.1 over 2,000 samples) leaves an estimation error of about 0.003 per weight.
    torch.testing.assert_close(layer.weight.detach().squeeze(0), datamodule.true_weight, atol=0.02, rtol=0)
    torch.testing.assert_close(layer.bias.detach().squeeze(0), datamodule.true_bias, atol=0.02, rtol=0)


@pytest.fixture(scope="module")
def short_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, float]]:
    """One short real run of the default CNN with TensorBoard and checkpoints, shared by the tests below."""
    run_dir = tmp_path_factory.mktemp("logs") / "run"
    cfg = compose_config("train", [*SMALL, "trainer.max_epochs=2", "trainer.log_every_n_steps=4"], run_dir)
    return run_dir, train(cfg)


CLASSIFICATION_TAGS = {
    "train/loss_step",
    "train/loss",
    "train/acc",
    "val/loss",
    "val/acc",
    "val/acc_best",
    "test/loss",
    "test/acc",
}


def test_run_writes_checkpoints_and_tensorboard_scalars(short_run: tuple[Path, dict[str, float]]) -> None:
    run_dir, metrics = short_run
    assert (run_dir / "checkpoints" / "last.ckpt").is_file()
    assert len(list((run_dir / "checkpoints").glob("epoch_*.ckpt"))) == 1
    scalars = read_scalars(run_dir)
    assert set(scalars) >= CLASSIFICATION_TAGS
    assert len(scalars["val/acc"]) == 2  # one point per epoch
    assert scalars["test/acc"][-1][1] == pytest.approx(metrics["test/acc"], abs=1e-6)


def test_step_curve_is_written_every_log_every_n_steps(short_run: tuple[Path, dict[str, float]]) -> None:
    run_dir, _ = short_run
    # 256 images in batches of 32: 8 steps an epoch, 16 in all; log_every_n_steps=4.
    assert [step for step, _ in read_scalars(run_dir)["train/loss_step"]] == [3, 7, 11, 15]
    assert len(read_scalars(run_dir)["train/loss"]) == 2  # one epoch mean per epoch


def test_epoch_loss_is_the_mean_of_the_step_losses(tmp_path: Path) -> None:
    """train/loss (accumulated by a torchmetrics mean) against every step's own loss."""
    overrides = [*SMALL, "trainer.max_epochs=1", "trainer.log_every_n_steps=1", "test=false"]
    metrics = train(compose_config("train", overrides, tmp_path / "run"))
    steps = [value for _, value in read_scalars(tmp_path / "run")["train/loss_step"]]
    assert len(steps) == 8  # equal batches, so the epoch mean is the plain mean of the steps
    assert metrics["train/loss"] == pytest.approx(sum(steps) / len(steps), rel=1e-5)
    # The progress bar and callbacks see the step value too, under the step name.
    assert metrics["train/loss_step"] == pytest.approx(steps[-1], rel=1e-6)


def test_hparams_tab_carries_real_metrics(short_run: tuple[Path, dict[str, float]]) -> None:
    run_dir, metrics = short_run
    hparams, metric_tags = read_hparams(run_dir)
    # A short set: the recipe's choices by option name, the settings researchers compare, the tags; the rest of
    # the config stays in .hydra/config.yaml. (TensorBoard shows the columns by name, those a sweep varies first,
    # the first five of them: test_tensorboard_server.py; a sweep's job: test_loggers.py.)
    columns = read_hparam_columns(run_dir)
    assert columns == [
        "data",
        "model",
        "optimizer",
        "optimizer.lr",
        "data.batch_size",
        "trainer.max_epochs",
        "seed",
        "tags",
    ]
    assert (hparams["data"], hparams["model"], hparams["optimizer"]) == ("synthetic_images", "cnn", "adam")
    # Numbers as text: TensorBoard would show them to five significant digits (0.0010000, 32.000).
    assert hparams["optimizer.lr"] == "0.001"
    assert (hparams["data.batch_size"], hparams["trainer.max_epochs"], hparams["seed"]) == ("32", "2", "12345")
    assert metric_tags[0] == "val/loss"  # the optimized metric first: the one metric column a 1600-px window shows
    assert not [tag for tag in metric_tags if not tag.startswith(("val/", "test/"))]  # final results only
    assert {"val/acc_best", "test/acc", "test/loss"} <= set(metric_tags)
    assert "hp_metric" not in metric_tags
    scalars = read_scalars(run_dir)
    assert "hp_metric" not in scalars
    # TensorBoard shows each metric's last scalar value: the real final number.
    assert scalars["val/acc_best"][-1][1] == pytest.approx(metrics["val/acc_best"], abs=1e-6)
    assert 0.0 < metrics["val/acc_best"] <= 1.0


def test_a_nan_training_loss_shows_in_the_epoch_mean(run_dir: Path) -> None:
    """The epoch mean keeps a NaN step rather than silently leaving it out (and checks no value per step)."""
    cfg = compose_config("train", SMALL, run_dir)
    model = build_model(cfg)
    model.train_loss.update(torch.tensor(0.5), weight=32)
    model.train_loss.update(torch.tensor(float("nan")), weight=32)
    assert torch.isnan(model.train_loss.compute())
