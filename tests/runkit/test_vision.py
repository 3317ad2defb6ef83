"""The MNIST family through trainlab-train: missing files stop the command in one line, IDX files train."""

from pathlib import Path

import pytest
import torch

from runkit.training import train
from tests.runkit.helpers.config import compose_config
from tests.runkit.helpers.process import run_script
from tests.trainlab.idx import missing_message, offline, write_layout


@pytest.mark.slow  # a whole trainlab process (~5 s)
def test_missing_files_stop_the_cli_before_training(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    result = run_script(
        "train",
        ["data=mnist", f"data.data_dir={tmp_path / 'empty'}", "data.download=false", f"paths.log_dir={logs}"],
        cwd=tmp_path,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [f"Error: {missing_message(tmp_path / 'empty')}"]
    # Nothing that looks like a result: the folder the run had just made is gone.
    assert list((logs / "train" / "runs").iterdir()) == []


def test_fast_dev_run_trains_on_idx_data(tmp_path: Path, run_dir: Path) -> None:
    write_layout(tmp_path / "data", "mnist", packed=True)
    cfg = compose_config(
        "train", ["data=mnist", *offline(tmp_path / "data"), "debug=fdr", "data.batch_size=32"], run_dir
    )
    metrics = train(cfg)
    assert {"train/loss", "val/acc", "test/acc"} <= set(metrics)
    assert torch.isfinite(torch.tensor(metrics["train/loss"]))
