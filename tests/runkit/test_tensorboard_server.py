"""`make tensorboard` serves runs: read them back through TensorBoard's HTTP API, as the browser does.
(What a browser draws from it is checked by hand, with headless screenshots: CI has no browser.)"""

import re
import shutil
import subprocess
import urllib.parse
from pathlib import Path

import pytest

from runkit.loggers.tensorboard import CURVES_CATEGORY
from runkit.runs.reading import read_scalars
from runkit.training import train
from tests.runkit.helpers.config import compose_config
from tests.runkit.helpers.servers import serve, stop, wait_for
from tests.runkit.helpers.tensorboard import read_custom_scalars

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


@pytest.fixture(scope="module")
def served_logs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """logs/ holding one short run of the default CNN, at logs/train/runs/first."""
    log_dir = tmp_path_factory.mktemp("served") / "logs"
    train(compose_config("train", SMALL, log_dir / "train" / "runs" / "first"))
    return log_dir


def test_each_run_charts_train_against_val_for_every_metric_it_logs_for_both(served_logs: Path) -> None:
    """What CI can check without a browser: the Custom Scalars layout in the run's event files, one chart per
    metric logged for both train and val, each drawing exactly those two curves (as TensorBoard matches them)."""
    run_dir = served_logs / "train" / "runs" / "first"
    tags = set(read_scalars(run_dir))
    charts = read_custom_scalars(run_dir)[CURVES_CATEGORY]
    assert list(charts) == ["loss", "acc"]  # in the order the model logs its validation metrics
    for name, patterns in charts.items():
        drawn = {tag for tag in tags if any(re.search(pattern, tag) for pattern in patterns)}
        assert drawn == {f"train/{name}", f"val/{name}"}
    # Lightning's epoch counter is no card of its own: it says nothing the step axis does not.
    assert "train/epoch" not in tags


def test_make_tensorboard_opens_on_the_charts_unsmoothed_and_names_runs_by_their_folder(
    served_logs: Path, tmp_path: Path
) -> None:
    expected = read_scalars(served_logs / "train" / "runs" / "first")["val/acc"]
    assert len(expected) == 3

    query = urllib.parse.urlencode({"run": "train/runs/first", "tag": "val/acc"})
    server, log = tensorboard(served_logs, tmp_path)
    try:
        points = wait_for(server, log, SERVING, f"data/plugin/scalars/scalars?{query}")
        dashboards = wait_for(server, log, SERVING, "data/plugins_listing")
        layout = wait_for(server, log, SERVING, "data/plugin/custom_scalars/layout")
    finally:
        stop(server)
    # Each point is [wall_time, step, value]: the browser's curve is the event files' curve, and the run is
    # named by its folder alone.
    assert [(step, value) for _, step, value in points] == expected
    # The browser opens the first dashboard of this listing that has data: the train-vs-val charts.
    assert next(name for name, dashboard in dashboards.items() if dashboard["enabled"]) == "custom_scalars"
    assert [chart["title"] for chart in layout["category"][0]["chart"]] == ["loss", "acc"]
    # The link printed opens them without smoothing (a few epochs are a few points); no TensorFlow notice.
    printed = log.read_text()
    assert re.search(r"http://127\.0\.0\.1:\d+/\?smoothing=0#custom_scalars&_smoothingWeight=0 ", printed)
    assert "TensorFlow" not in printed


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
    # Each run is its job's folder, named by what sets it apart and nothing more.
    expected_runs = {job.name for job in log_dir.iterdir() if any(job.glob("events.out.tfevents.*"))}
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
