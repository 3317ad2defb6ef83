"""callbacks=pruning through trainlab-train: sparsity in TensorBoard, and a tested checkpoint of plain zeroed weights."""

from pathlib import Path

import pytest
import torch

from runkit.runs.reading import read_scalars
from runkit.training import train
from tests.runkit.helpers.config import compose_config
from tests.runkit.helpers.runs import SMALL_CNN
from tests.runkit.helpers.tensorboard import values

SMALL = SMALL_CNN


def test_pruning_run_ends_with_the_stated_fraction_of_zero_weights(run_dir: Path) -> None:
    cfg = compose_config(
        "train",
        [
            "callbacks=pruning",
            "callbacks.model_pruning.amount.final_sparsity=0.7",
            "trainer.max_epochs=2",
            "callbacks.progress_bar=null",
            *SMALL,
        ],
        run_dir,
    )
    metrics = train(cfg)

    scalars = values(read_scalars(run_dir))
    assert scalars["model/sparsity"] == pytest.approx([0.35, 0.7], abs=1e-3)  # one step per epoch
    assert {"val/acc", "test/acc"} <= set(scalars)

    # The tested (best = last) checkpoint holds plain weights with 70% exact zeros, and still classifies.
    checkpoint = torch.load(run_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    state = checkpoint["state_dict"]
    assert not any(key.endswith(("_orig", "_mask")) for key in state)  # pruning made permanent
    weights = [value for key, value in state.items() if key.endswith(".weight") and value.ndim > 1]
    zeros = sum(int((w == 0).sum()) for w in weights) / sum(w.numel() for w in weights)
    assert zeros == pytest.approx(0.7, abs=1e-3)
    assert 0.0 <= metrics["test/acc"] <= 1.0 and torch.isfinite(torch.tensor(metrics["test/loss"]))
