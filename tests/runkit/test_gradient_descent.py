"""experiment=linear_gd through trainlab-train's run: it reaches the noise floor."""

from pathlib import Path

from runkit.training import train
from tests.runkit.helpers.config import compose_config


def test_linear_gd_runs_through_the_entry_point(run_dir: Path) -> None:
    cfg = compose_config("train", ["experiment=linear_gd", "trainer.max_epochs=30", "data.num_train=500"], run_dir)
    metrics = train(cfg)
    assert metrics["val/loss"] < 0.05  # noise variance is 0.01; starting loss is several units
