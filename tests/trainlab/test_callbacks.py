"""The template's callbacks on plain Lightning Trainers: pruning, the generalization gap, the finite-loss guard and
the learning-rate curve."""

import csv
from pathlib import Path

import lightning.pytorch as pl
import pytest
import torch
from hydra.utils import instantiate
from lightning.pytorch.loggers import CSVLogger

from tests.trainlab.plain_run import fit_and_test
from trainlab.callbacks.finite_loss import NonFiniteLossError, StopOnNonFiniteLoss
from trainlab.callbacks.generalization_gap import GeneralizationGap, evaluate
from trainlab.callbacks.learning_rate import LogLearningRate
from trainlab.callbacks.pruning import SparsitySchedule, weight_sparsity

SMALL_MLP = ["model=mlp", "data=synthetic_classification", "data.num_train=200", "data.num_val=100"]


def logged_rows(folder: Path) -> list[dict[str, str]]:
    """The rows Lightning's CSVLogger wrote: one per logging step, with the columns logged at it."""
    (metrics,) = folder.rglob("metrics.csv")
    with metrics.open() as file:
        return list(csv.DictReader(file))


def column(rows: list[dict[str, str]], name: str) -> list[float]:
    return [float(row[name]) for row in rows if row.get(name)]


class KeepModel(pl.Callback):
    """The model a run trained, as it is when fitting ends."""

    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.model = pl_module


def test_the_pruning_schedule_reaches_the_final_sparsity_in_equal_steps() -> None:
    schedule = SparsitySchedule(final_sparsity=0.6, num_epochs=3, start_epoch=1)
    remaining = 1.0
    sparsity = []
    for epoch in range(6):
        remaining *= 1.0 - schedule(epoch)  # each amount prunes a fraction of what is left
        sparsity.append(1.0 - remaining)
    assert sparsity == pytest.approx([0.0, 0.2, 0.4, 0.6, 0.6, 0.6])


def test_weight_sparsity_counts_masked_weights() -> None:
    layer = torch.nn.Linear(4, 5)
    torch.nn.utils.prune.l1_unstructured(layer, "weight", amount=0.25)
    assert weight_sparsity(layer) == pytest.approx(5 / 20)


def test_callbacks_pruning_leaves_the_stated_fraction_of_plain_zero_weights(compose_train, tmp_path: Path) -> None:
    cfg = compose_train(
        *SMALL_MLP, "callbacks=pruning", "callbacks.model_pruning.amount.final_sparsity=0.7", "trainer.max_epochs=2"
    )
    pruning = [instantiate(cfg.callbacks.model_pruning), instantiate(cfg.callbacks.sparsity_monitor)]
    kept = KeepModel()
    fit_and_test(cfg, *pruning, kept, logger=CSVLogger(tmp_path / "csv"))
    assert column(logged_rows(tmp_path / "csv"), "model/sparsity") == pytest.approx([0.35, 0.7], abs=1e-3)
    state = kept.model.state_dict()
    assert not any(key.endswith(("_orig", "_mask")) for key in state)  # pruning made permanent
    weights = [value for key, value in state.items() if key.endswith(".weight") and value.ndim > 1]
    zeros = sum(int((weight == 0).sum()) for weight in weights) / sum(weight.numel() for weight in weights)
    assert zeros == pytest.approx(0.7, abs=1e-3)


def test_the_gap_is_the_eval_mode_losses_of_both_splits_once_an_epoch(compose_train, tmp_path: Path) -> None:
    cfg = compose_train(*SMALL_MLP, "model.net.hidden=[64]", "model.net.dropout=0.5", "test=false")
    logger = CSVLogger(tmp_path / "csv")
    datamodule, model = instantiate(cfg.data), instantiate(cfg.model)
    trainer = instantiate(cfg.trainer, max_epochs=2, logger=logger, callbacks=[GeneralizationGap()])
    trainer.fit(model, datamodule=datamodule)
    rows = logged_rows(tmp_path / "csv")
    assert len(column(rows, "gap/loss")) == 2  # one point per epoch, none from the sanity check
    model.eval()
    with torch.no_grad():
        for split in ("train", "val"):
            inputs, targets = datamodule.splits[split]
            expected = float(model.loss(model(inputs), targets))
            assert column(rows, f"gap/{split}_loss")[-1] == pytest.approx(expected, rel=1e-4)
    assert column(rows, "gap/val_loss")[-1] == pytest.approx(column(rows, "val/loss")[-1], rel=1e-4)
    model.train()  # evaluate() switches dropout off and then restores the mode it found
    evaluate(model, *datamodule.splits["val"], batch_size=32)
    assert model.training


# Plain gradient descent on linear regression is unstable above lr = 2 / (largest curvature, about 2):
# at lr=3 the error grows about fivefold per step until the loss overflows a few epochs in.
DIVERGING = ["model=linear", "data=synthetic_regression", "optimizer=gd", "optimizer.lr=3", "data.num_train=256"]


def test_a_diverging_run_stops_at_its_first_non_finite_loss_naming_the_step(compose_train) -> None:
    cfg = compose_train(*DIVERGING, "data.num_val=64", "data.batch_size=32", "trainer.max_epochs=20")
    with pytest.raises(NonFiniteLossError) as error:
        fit_and_test(cfg, StopOnNonFiniteLoss())
    assert str(error.value) == (
        "The training loss became inf at step 23 (epoch 3, batch 8, counted from 1): "
        "the learning rate is likely too high or the data "
        "hold NaN/inf values; lower optimizer.lr or check the data."
    )


def test_the_learning_rate_is_a_train_curve_once_an_epoch(compose_train, tmp_path: Path) -> None:
    cfg = compose_train(*SMALL_MLP, "optimizer.lr=0.01", "scheduler=step", "test=false")
    fit_and_test(cfg, LogLearningRate(), max_epochs=3, logger=CSVLogger(tmp_path / "csv"))
    rates = column(logged_rows(tmp_path / "csv"), "train/lr")
    assert len(rates) == 3 and rates[0] == pytest.approx(0.01)
