"""The hyperparameters every logger is given, the set TensorBoard's HPARAMS tab compares runs by, and what
a run tells the user about its loggers: none of it needs the optional loggers' packages."""

import subprocess
import sys
from pathlib import Path

import pytest
from tensorboard.backend.event_processing.plugin_event_multiplexer import EventMultiplexer
from tensorboard.plugins.hparams import metadata

from runkit.loggers.hparams import collect_hyperparameters
from runkit.runs.status import read_status
from tests.runkit.helpers.config import compose_config
from tests.runkit.helpers.process import run_script
from tests.runkit.helpers.runs import TINY_MLP
from tests.runkit.helpers.sweeps import job_dir
from tests.runkit.helpers.tensorboard import read_hparam_columns, read_hparams

SMALL = TINY_MLP + ["trainer.max_epochs=2"]


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
    # What `tensorboard --logdir <sweep>` reads: the HPARAMS tab's Trial ID is the job's folder, and nothing more.
    multiplexer = EventMultiplexer()
    multiplexer.AddRunsFromDirectory(str(sweep))
    multiplexer.Reload()
    hparams_runs = multiplexer.PluginRunToTagToContent(metadata.PLUGIN_NAME)
    jobs = [job_dir(sweep, number) for number in range(2)]
    assert sorted(hparams_runs) == [job.name for job in jobs]
    for job, regularizer in zip(jobs, ["none", "l2"], strict=True):
        # A short set (at most a dozen): the recipe's choices, the group the sweep varies, the compared settings.
        assert read_hparam_columns(job) == [
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
        experiment = metadata.parse_experiment_plugin_data(hparams_runs[job.name][metadata.EXPERIMENT_TAG])
        assert [info.name for info in experiment.hparam_infos if info.differs] == ["regularizer"]  # its columns lead
        hparams, metric_tags = read_hparams(job)
        assert (hparams["regularizer"], hparams["data.batch_size"], hparams["trainer.max_epochs"]) == (
            regularizer,
            "32",
            "1",
        )
        assert metric_tags[0] == "val/loss"  # the optimized metric
        assert set(metric_tags) == set(read_status(job)["metrics"])  # the final val/ and test/ values


def test_a_logger_whose_package_is_missing_stops_the_run_with_one_line(tmp_path: Path) -> None:
    """.venv has no MLflow; in a venv that has it, it is hidden (None in sys.modules reads as "absent")."""
    code = "import sys; sys.modules['mlflow'] = None; from runkit.train import cli; cli()"
    args = [*SMALL, "logger=many", f"hydra.run.dir={tmp_path / 'run'}", f"paths.log_dir={tmp_path}"]
    result = subprocess.run(
        [sys.executable, "-c", code, *args], cwd=tmp_path, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 2, result.stderr[-2000:]
    assert result.stderr.strip().splitlines() == [
        "Error: logger.mlflow needs the mlflow package, which is not installed in this venv; run "
        ".venv-extras/bin/trainlab-train instead (`make install-extras` makes it), add it to this venv with "
        "pip install -e '.[mlflow]', or choose another logger=."
    ]
    assert not (tmp_path / "run" / "checkpoints").exists()
    assert not (tmp_path / "mlflow.db").exists()
