"""`make tensorboard` serves runs: read them back through TensorBoard's HTTP API, as the browser does."""

import re
import shutil
import subprocess
import urllib.parse
from pathlib import Path

import pytest

from runkit.runs.reading import read_scalars
from runkit.training import train
from tests.runkit.helpers.config import compose_config
from tests.runkit.helpers.servers import serve, stop, wait_for

SMALL = [
    "data.num_train=192",
    "data.num_val=64",
    "data.num_test=32",
    "data.batch_size=32",
    "trainer.max_epochs=3",
    "callbacks=none",
]
SERVING = re.compile(r"http://127\.0\.0\.1:(\d+)/")  # what TensorBoard prints once it listens


def tensorboard(log_dir: Path, tmp_path: Path) -> tuple[subprocess.Popen, Path]:
    # TB_PORT=0: the system picks a free port and TensorBoard prints it: no port can be taken in between.
    return serve("tensorboard", tmp_path, LOGDIR=str(log_dir), TB_HOST="127.0.0.1", TB_PORT="0")


def test_make_tensorboard_serves_the_runs_val_acc_curve(tmp_path: Path) -> None:
    log_dir = tmp_path / "logs"
    run_dir = log_dir / "train" / "runs" / "first"
    train(compose_config("train", SMALL, run_dir))
    expected = read_scalars(run_dir / "tensorboard")["val/acc"]
    assert len(expected) == 3

    query = urllib.parse.urlencode({"run": "train/runs/first/tensorboard", "tag": "val/acc"})
    server, log = tensorboard(log_dir, tmp_path)
    try:
        points = wait_for(server, log, SERVING, f"data/plugin/scalars/scalars?{query}")
    finally:
        stop(server)
    # Each point is [wall_time, step, value]: the browser's curve is the event files' curve.
    assert [(step, value) for _, step, value in points] == expected


@pytest.mark.slow
def test_hparams_tab_and_run_names_of_a_multirun_as_the_browser_reads_them(
    seed_sweep: tuple[Path, str], tmp_path: Path
) -> None:
    """TensorBoard names the sweep's runs by what sets its jobs apart; the HPARAMS tab's columns open with the
    keys the sweep varies and hold the recipe's choices by name; its metrics are final val/ and test/ values."""
    sweep_dir, _ = seed_sweep
    log_dir = tmp_path / "multirun"
    shutil.copytree(sweep_dir, log_dir)  # the shared sweep stays as it is
    server, log = tensorboard(log_dir, tmp_path)
    try:
        runs = wait_for(server, log, SERVING, "data/runs")
        experiment = wait_for(server, log, SERVING, "data/plugin/hparams/experiment", body={"experimentName": ""})
        tags = wait_for(server, log, SERVING, "data/plugin/scalars/tags")
    finally:
        stop(server)
    expected_runs = set()
    for job in log_dir.iterdir():
        if (job / "tensorboard").is_dir():
            expected_runs.add(f"{job.name}/tensorboard")  # the job folder says what sets it apart
    assert len(expected_runs) == 4  # the sweep's jobs that trained
    assert set(runs) == expected_runs
    columns = [info["name"] for info in experiment["hparamInfos"]]
    assert columns[:2] == ["optimizer.lr", "seed"]
    # The browser shows the first five: what the sweep varies, then the recipe's choices.
    assert columns[:5] == ["optimizer.lr", "seed", "data", "data.batch_size", "model"]
    assert columns[5:] == ["optimizer", "tags", "trainer.max_epochs"]
    metrics = [info["name"]["tag"] for info in experiment["metricInfos"]]
    assert metrics and all(tag.startswith(("val/", "test/")) for tag in metrics)
    # Time Series: every card is in the train/, val/ or test/ group; none stands alone before them.
    assert {tag.split("/")[0] for run in tags.values() for tag in run} == {"train", "val", "test"}
