"""Every logger gets the hyperparameters runs are compared by and the final metrics (MLflow and W&B the whole
config besides), read back with each library's own reader: TensorBoard's event reader, MLflow's client, the W&B
offline run's records and the CSV files."""

import csv
import logging
import re
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from omegaconf import open_dict

from runkit.compat import read_wandb_offline_run
from runkit.runs.reading import read_scalars
from runkit.runs.status import final_results
from runkit.training import report_run, train
from tests.runkit.helpers.config import compose_config
from tests.runkit.helpers.process import run_script
from tests.runkit.helpers.runs import TINY_MLP
from tests.runkit.helpers.servers import serve, stop, wait_for
from tests.runkit.helpers.sweeps import job_dir
from tests.runkit.helpers.tensorboard import read_hparams

# Every test here needs MLflow or W&B: they run in .venv-extras (the lean ones are in test_hparams.py).
pytestmark = pytest.mark.extras

SMALL = TINY_MLP + ["trainer.max_epochs=2"]


@pytest.fixture(scope="module")
def logged_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, float]]:
    """One run logged to TensorBoard, CSV, MLflow and W&B at once; logs/ is the folder above it."""
    run_dir = tmp_path_factory.mktemp("logs") / "run"
    return run_dir, train(compose_config("train", [*SMALL, "logger=[many,wandb]"], run_dir))


def comparable(value: Any) -> float | str:
    """A hyperparameter as a number where it is one: MLflow keeps text ('0.001', 'False') and TensorBoard's
    summary (written by torch) keeps booleans as numbers."""
    if isinstance(value, str) and value in ("True", "False"):
        return float(value == "True")
    try:
        return float(value)
    except (TypeError, ValueError):
        return str(value)


def same_value(logged: Any, value: Any) -> bool:
    logged, value = comparable(logged), comparable(value)
    return logged == pytest.approx(value) if isinstance(value, float) else logged == value


def assert_same_params(logged: dict[str, Any], reference: dict[str, Any]) -> None:
    assert set(logged) == set(reference)
    assert [key for key in reference if not same_value(logged[key], reference[key])] == []


def assert_whole_config(logged: dict[str, Any], compared: dict[str, Any], run_dir: Path) -> None:
    """The set runs are compared by, with the same values, then the rest of the config and the model's size."""
    assert_same_params({key: logged[key] for key in compared}, compared)
    assert {"model.net.hidden", "trainer.precision", "callbacks.early_stopping.patience"} <= set(logged)
    assert same_value(logged["paths.output_dir"], str(run_dir))
    assert int(logged["model/params_total"]) > 0


@pytest.mark.slow
def test_mlflow_records_the_hyperparameters_and_final_metrics(logged_run: tuple[Path, dict[str, float]]) -> None:
    from mlflow import MlflowClient  # imported by the test: collecting this file must not need MLflow

    run_dir, metrics = logged_run
    params, _ = read_hparams(run_dir)
    client = MlflowClient(f"sqlite:///{run_dir.parent / 'mlflow.db'}")
    (run,) = client.search_runs([client.get_experiment_by_name("train").experiment_id])
    assert run.info.run_name == run_dir.name
    assert run.info.status == "FINISHED"
    assert run.data.tags["run_folder"] == str(run_dir)
    assert_whole_config(run.data.params, params, run_dir)
    for name, value in final_results(metrics).items():
        assert run.data.metrics[name] == pytest.approx(value, abs=1e-6), name
    assert [point.value for point in client.get_metric_history(run.info.run_id, "val/loss")] == pytest.approx(
        [value for _, value in read_scalars(run_dir)["val/loss"]]
    )


@pytest.mark.slow
def test_wandb_offline_run_records_the_hyperparameters_and_final_metrics(
    logged_run: tuple[Path, dict[str, float]],
) -> None:
    run_dir, metrics = logged_run
    params, _ = read_hparams(run_dir)
    run = read_wandb_offline_run(run_dir)
    assert run.name == run_dir.name
    assert_whole_config(run.config, params, run_dir)
    for name, value in final_results(metrics).items():
        assert run.summary[name] == pytest.approx(value, abs=1e-6), name
    assert len([row for row in run.history if "val/acc" in row]) == 2  # one point an epoch


@pytest.mark.slow
def test_csv_and_tensorboard_record_the_same_run(logged_run: tuple[Path, dict[str, float]]) -> None:
    run_dir, metrics = logged_run
    params, metric_tags = read_hparams(run_dir)
    assert set(metric_tags) == set(final_results(metrics))  # the HPARAMS tab: final val/ and test/ values
    assert_same_params(yaml.safe_load((run_dir / "csv" / "hparams.yaml").read_text()), params)
    with (run_dir / "csv" / "metrics.csv").open() as file:
        rows = list(csv.DictReader(file))
    for name, value in final_results(metrics).items():
        last = [row[name] for row in rows if row.get(name)][-1]
        assert float(last) == pytest.approx(value, abs=1e-6), name


@pytest.mark.slow
def test_time_series_cards_are_grouped_with_the_learning_rate_beside_the_loss(
    logged_run: tuple[Path, dict[str, float]],
) -> None:
    """TensorBoard shows an ungrouped tag as a group of its own, first: every tag is in train/, val/ or test/, and
    Lightning's epoch counter, a card that says nothing the step axis does not, is left out."""
    run_dir, _ = logged_run
    tags = set(read_scalars(run_dir))
    assert {tag.split("/")[0] for tag in tags} == {"train", "val", "test"}
    assert {"train/lr", "train/loss"} <= tags
    assert "train/epoch" not in tags


@pytest.mark.slow
def test_summarize_reads_runs_without_event_files(tmp_path: Path) -> None:
    """A sweep over loggers: CSV only, MLflow only and none; each job's final metrics still reach the summary."""
    sweep = tmp_path / "multirun"
    args = ["-m", *SMALL, "logger=csv,mlflow,none", f"hydra.sweep.dir={sweep}", f"paths.log_dir={tmp_path}"]
    result = run_script("train", args, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert not list(sweep.rglob("events.out.tfevents.*"))
    summarized = run_script("summarize", [str(sweep)], cwd=tmp_path)
    assert summarized.returncode == 0, summarized.stderr[-3000:]
    with (sweep / "summary.csv").open() as file:
        rows = {row["logger"]: row for row in csv.DictReader(file)}
    assert set(rows) == {"csv", "mlflow", "none"}
    for logger, row in rows.items():
        assert row["status"] == "ok", row["error"]
        recorded = yaml.safe_load((sweep / row["run"] / "status.yaml").read_text())["metrics"]
        assert float(row["test/acc"]) == pytest.approx(recorded["test/acc"], abs=1e-4), logger
        assert float(row["val/loss final"]) == pytest.approx(recorded["val/loss"], abs=1e-4), logger


@pytest.mark.slow
def test_make_mlflow_serves_the_run(logged_run: tuple[Path, dict[str, float]], tmp_path: Path) -> None:
    """The MLflow UI's own REST API, on the store `logger=mlflow` wrote under logs/; port 0: the system picks one."""
    run_dir, metrics = logged_run
    serving = re.compile(r"Uvicorn running on http://127\.0\.0\.1:(\d+)")
    server, log = serve("mlflow", tmp_path, LOGDIR=str(run_dir.parent), TB_HOST="127.0.0.1", MLFLOW_PORT="0")
    try:
        experiment = wait_for(server, log, serving, "api/2.0/mlflow/experiments/get-by-name?experiment_name=train")
        body = {"experiment_ids": [experiment["experiment"]["experiment_id"]]}
        found = wait_for(server, log, serving, "api/2.0/mlflow/runs/search", body=body)
    finally:
        stop(server)
    (run,) = found["runs"]
    assert run["info"]["run_name"] == run_dir.name
    served = {metric["key"]: metric["value"] for metric in run["data"]["metrics"]}
    assert served["test/acc"] == pytest.approx(metrics["test/acc"], abs=1e-6)
    # It opens on the runs: the link to the train experiment's runs table, the UI's own address for it.
    experiment_id = experiment["experiment"]["experiment_id"]
    assert f"  train: http://127.0.0.1:0/#/experiments/{experiment_id}/runs\n" in log.read_text()


@pytest.mark.slow
def test_parallel_sweep_jobs_share_one_new_mlflow_store(tmp_path: Path) -> None:
    """Jobs started together on a store that does not exist yet: one creates it, and each gets a run of its own."""
    from mlflow import MlflowClient

    sweep = tmp_path / "multirun"
    args = ["-m", *SMALL, "logger=mlflow", "seed=1,2,3", "hydra/launcher=joblib", "hydra.launcher.n_jobs=3"]
    result = run_script("train", [*args, f"hydra.sweep.dir={sweep}", f"paths.log_dir={tmp_path}"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    statuses = [yaml.safe_load((job_dir(sweep, job) / "status.yaml").read_text())["status"] for job in range(3)]
    assert statuses == ["ok"] * 3
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    runs = client.search_runs([client.get_experiment_by_name("train").experiment_id])
    # Named by what the sweep varies, then the sweep (its folder, here named on the command line) and the job number.
    assert sorted(run.info.run_name for run in runs) == [f"seed={seed}_multirun#00{seed - 1}" for seed in (1, 2, 3)]
    assert {run.info.status for run in runs} == {"FINISHED"}


def test_the_printed_mlflow_command_works_from_any_folder(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    cfg = compose_config("train", ["logger=mlflow"], tmp_path / "run")
    with open_dict(cfg):
        cfg.logger.mlflow.tracking_uri = "sqlite:///./logs/mlflow.db"  # paths.root_dir's default is "."
    with caplog.at_level(logging.INFO):
        report_run(cfg, {})
    store = f"sqlite:///{Path.cwd() / 'logs' / 'mlflow.db'}"
    assert f"View it in MLflow: {sys.executable} -m runkit.mlflow_ui {store} 127.0.0.1 5000" in caplog.text
