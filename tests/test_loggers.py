"""Every logger gets the hyperparameters runs are compared by and the final metrics (MLflow and W&B the whole
config besides), read back with each library's own reader: TensorBoard's event reader, MLflow's client, the W&B
offline run's records and the CSV files."""

import csv
import logging
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import mlflow
import pytest
import yaml
from omegaconf import open_dict
from tensorboard.backend.event_processing.plugin_event_multiplexer import EventMultiplexer
from tensorboard.plugins.hparams import metadata

from tests.helpers.config import compose_config
from tests.helpers.process import run_script
from tests.helpers.runs import TINY_MLP
from tests.helpers.servers import serve, stop, wait_for
from tests.helpers.sweeps import job_dir
from tests.helpers.tensorboard import read_hparam_columns, read_hparams
from trainlab.compat import read_wandb_offline_run
from trainlab.loggers.hparams import collect_hyperparameters
from trainlab.runs.names import safe_name, short_value
from trainlab.runs.reading import read_scalars
from trainlab.runs.status import final_results, read_status
from trainlab.training import report_run, train

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
    run_dir, metrics = logged_run
    params, _ = read_hparams(run_dir / "tensorboard")
    client = mlflow.MlflowClient(f"sqlite:///{run_dir.parent / 'mlflow.db'}")
    (run,) = client.search_runs([client.get_experiment_by_name("train").experiment_id])
    assert run.info.run_name == run_dir.name
    assert run.info.status == "FINISHED"
    assert run.data.tags["run_folder"] == str(run_dir)
    assert_whole_config(run.data.params, params, run_dir)
    for name, value in final_results(metrics).items():
        assert run.data.metrics[name] == pytest.approx(value, abs=1e-6), name
    assert [point.value for point in client.get_metric_history(run.info.run_id, "val/loss")] == pytest.approx(
        [value for _, value in read_scalars(run_dir / "tensorboard")["val/loss"]]
    )


@pytest.mark.slow
def test_wandb_offline_run_records_the_hyperparameters_and_final_metrics(
    logged_run: tuple[Path, dict[str, float]],
) -> None:
    run_dir, metrics = logged_run
    params, _ = read_hparams(run_dir / "tensorboard")
    run = read_wandb_offline_run(run_dir)
    assert run.name == run_dir.name
    assert_whole_config(run.config, params, run_dir)
    for name, value in final_results(metrics).items():
        assert run.summary[name] == pytest.approx(value, abs=1e-6), name
    assert len([row for row in run.history if "val/acc" in row]) == 2  # one point an epoch


@pytest.mark.slow
def test_csv_and_tensorboard_record_the_same_run(logged_run: tuple[Path, dict[str, float]]) -> None:
    run_dir, metrics = logged_run
    params, metric_tags = read_hparams(run_dir / "tensorboard")
    assert set(metric_tags) == set(final_results(metrics))  # the HPARAMS tab: final val/ and test/ values
    assert_same_params(yaml.safe_load((run_dir / "csv" / "hparams.yaml").read_text()), params)
    with (run_dir / "csv" / "metrics.csv").open() as file:
        rows = list(csv.DictReader(file))
    for name, value in final_results(metrics).items():
        last = [row[name] for row in rows if row.get(name)][-1]
        assert float(last) == pytest.approx(value, abs=1e-6), name


def test_a_run_of_an_experiment_is_compared_by_the_experiments_name_first(tmp_path: Path) -> None:
    params = collect_hyperparameters(compose_config("train", ["experiment=example"], tmp_path / "run"))
    compared = ["optimizer.lr", "data.batch_size", "trainer.max_epochs", "seed", "tags"]
    assert list(params) == ["experiment", "data", "model", "optimizer", *compared]
    assert (params["experiment"], params["model"], params["optimizer"]) == ("example", "mlp", "momentum")
    assert (params["optimizer.lr"], params["data.batch_size"], params["tags"]) == (0.02, 64, "['example', 'mlp']")


@pytest.mark.slow
def test_a_sweeps_hparams_tab_names_each_job_by_its_folder_and_marks_what_the_sweep_varies(tmp_path: Path) -> None:
    sweep = tmp_path / "multirun"
    args = ["-m", *TINY_MLP, "trainer.max_epochs=1", "regularizer=none,l2", f"hydra.sweep.dir={sweep}"]
    result = run_script("train", [*args, f"paths.log_dir={tmp_path}"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    # What `tensorboard --logdir <sweep>` reads: the HPARAMS tab's Trial ID is the run's folder below the one served.
    multiplexer = EventMultiplexer()
    multiplexer.AddRunsFromDirectory(str(sweep))
    multiplexer.Reload()
    hparams_runs = multiplexer.PluginRunToTagToContent(metadata.PLUGIN_NAME)
    jobs = [job_dir(sweep, number) for number in range(2)]
    assert sorted(hparams_runs) == [f"{job.name}/tensorboard" for job in jobs]
    for job, regularizer in zip(jobs, ["none", "l2"], strict=True):
        # A short set (at most a dozen): the recipe's choices, the group the sweep varies, the compared settings.
        assert read_hparam_columns(job / "tensorboard") == [
            "data",
            "model",
            "optimizer",
            "regularizer",
            "optimizer.lr",
            "data.batch_size",
            "trainer.max_epochs",
            "seed",
            "tags",
        ]
        experiment = metadata.parse_experiment_plugin_data(
            hparams_runs[f"{job.name}/tensorboard"][metadata.EXPERIMENT_TAG]
        )
        assert [info.name for info in experiment.hparam_infos if info.differs] == ["regularizer"]  # its columns lead
        hparams, metric_tags = read_hparams(job / "tensorboard")
        assert (hparams["regularizer"], hparams["data.batch_size"], hparams["trainer.max_epochs"]) == (
            regularizer,
            "32",
            "1",
        )
        assert metric_tags[0] == "val/loss"  # the optimized metric
        assert set(metric_tags) == set(read_status(job)["metrics"])  # the final val/ and test/ values


@pytest.mark.slow
def test_time_series_cards_are_grouped_with_the_learning_rate_beside_the_loss(
    logged_run: tuple[Path, dict[str, float]],
) -> None:
    """TensorBoard shows an ungrouped tag as a group of its own, first: every tag is in train/, val/ or test/."""
    run_dir, _ = logged_run
    tags = set(read_scalars(run_dir / "tensorboard"))
    assert {tag.split("/")[0] for tag in tags} == {"train", "val", "test"}
    assert {"train/lr", "train/epoch", "train/loss"} <= tags


def test_a_logger_whose_package_is_missing_stops_the_run_with_one_line(tmp_path: Path) -> None:
    """mlflow hidden from the process (None in sys.modules is what Python's import system reads as "absent")."""
    code = "import sys; sys.modules['mlflow'] = None; from trainlab.train import cli; cli()"
    args = [*SMALL, "logger=many", f"hydra.run.dir={tmp_path / 'run'}", f"paths.log_dir={tmp_path}"]
    result = subprocess.run(
        [sys.executable, "-c", code, *args], cwd=tmp_path, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 2, result.stderr[-2000:]
    assert result.stderr.strip().splitlines() == [
        "Error: logger.mlflow needs the mlflow package, which is not installed; "
        "install it with: pip install 'trainlab[mlflow]' (or choose another logger=)."
    ]
    assert not (tmp_path / "run" / "checkpoints").exists()
    assert not (tmp_path / "mlflow.db").exists()


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


def test_a_run_name_is_a_short_safe_folder_name() -> None:
    assert safe_name("optimizer=sgd,seed=2") == "optimizer=sgd,seed=2"
    assert safe_name("data.data_dir=/my data/mnist,tags=[a, b]") == "data.data_dir=_my_data_mnist,tags=_a,_b_"
    first, second = (safe_name("model.net.channels=[" + "64," * 40 + str(last) + "]") for last in (1, 2))
    assert len(first) == len(second) == 80
    assert first != second  # cut names keep a hash of the whole name


@pytest.mark.slow
def test_parallel_sweep_jobs_share_one_new_mlflow_store(tmp_path: Path) -> None:
    """Jobs started together on a store that does not exist yet: one creates it, and each gets a run of its own."""
    sweep = tmp_path / "multirun"
    args = ["-m", *SMALL, "logger=mlflow", "seed=1,2,3", "hydra/launcher=joblib", "hydra.launcher.n_jobs=3"]
    result = run_script("train", [*args, f"hydra.sweep.dir={sweep}", f"paths.log_dir={tmp_path}"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    statuses = [yaml.safe_load((job_dir(sweep, job) / "status.yaml").read_text())["status"] for job in range(3)]
    assert statuses == ["ok"] * 3
    client = mlflow.MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    runs = client.search_runs([client.get_experiment_by_name("train").experiment_id])
    assert sorted(run.info.run_name for run in runs) == ["seed=1", "seed=2", "seed=3"]
    assert {run.info.status for run in runs} == {"FINISHED"}


def test_a_searchs_numbers_are_named_to_four_digits() -> None:
    assert [short_value(text) for text in ("0.00025529246739698907", "1e-3", "0.05", "12", "sgd", "[1,2]")] == [
        "0.0002553",
        "0.001",
        "0.05",
        "12",
        "sgd",
        "[1,2]",
    ]


def test_the_printed_mlflow_command_works_from_any_folder(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    cfg = compose_config("train", ["logger=mlflow"], tmp_path / "run")
    with open_dict(cfg):
        cfg.logger.mlflow.tracking_uri = "sqlite:///./logs/mlflow.db"  # paths.root_dir's default is "."
    with caplog.at_level(logging.INFO):
        report_run(cfg, {})
    store = f"sqlite:///{Path.cwd() / 'logs' / 'mlflow.db'}"
    assert f"ui --backend-store-uri {store}" in caplog.text
