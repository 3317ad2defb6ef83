"""Repeatable runs, and a diverging run stopped at its first non-finite loss with the last good checkpoint kept."""

from pathlib import Path

import pytest
import torch

from runkit.checkpoints import load_checkpoint
from runkit.training import train
from tests.runkit.helpers.config import compose_config
from tests.runkit.helpers.runs import TINY_MLP
from trainlab.callbacks.finite_loss import NonFiniteLossError

TINY = [*TINY_MLP, "trainer.max_epochs=2", "trainer.deterministic=true", "logger=none", "model.net.dropout=0.2"]


def test_same_seed_gives_identical_metrics(tmp_path: Path) -> None:
    first = train(compose_config("train", TINY, tmp_path / "logs" / "first"))
    second = train(compose_config("train", TINY, tmp_path / "logs" / "second"))
    assert first == second
    other_seed = train(compose_config("train", [*TINY, "seed=7"], tmp_path / "logs" / "other"))
    assert other_seed["val/loss"] != first["val/loss"]  # the seed matters, so the equality above means something


# Plain gradient descent on linear regression is unstable above lr = 2 / (largest curvature, about 2):
# at lr=3 the error grows about fivefold per step until the loss overflows a few epochs in.
DIVERGING = [
    "model=linear",
    "data=synthetic_regression",
    "optimizer=gd",
    "optimizer.lr=3",
    "data.num_train=256",
    "data.num_val=64",
    "data.num_test=64",
    "data.batch_size=32",
    "trainer.max_epochs=20",
    "logger=none",
    "callbacks.progress_bar=null",
    "callbacks.model_summary=null",
    "callbacks.early_stopping=null",
]


def test_diverging_run_stops_at_the_first_non_finite_loss(run_dir: Path) -> None:
    last = run_dir / "checkpoints" / "last.ckpt"
    with pytest.raises(NonFiniteLossError) as error:
        train(compose_config("train", DIVERGING, run_dir))
    assert str(error.value) == (
        "The training loss became inf at step 23 (epoch 3, batch 8, counted from 1): "
        "the learning rate is likely too high or the data "
        f"hold NaN/inf values; lower optimizer.lr or check the data; the last good checkpoint {last} is untouched."
    )
    checkpoint = load_checkpoint(last)
    assert checkpoint["global_step"] == 16  # the end of epoch 1, the latest epoch before the loss overflowed
    assert all(torch.isfinite(weight).all() for weight in checkpoint["state_dict"].values())
