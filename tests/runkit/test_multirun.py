"""Multiruns as a user launches them: failed jobs recorded while the sweep goes on, launchers, run folders."""

import os
import subprocess
from pathlib import Path

import pytest
import yaml
from hydra import compose
from omegaconf import OmegaConf

from runkit.config import ConfigError
from runkit.process.setup import threads_per_job
from runkit.runs.reading import read_scalars
from runkit.training import run
from tests.runkit.helpers.config import compose_config, hydra_context
from tests.runkit.helpers.process import BIN, ROOT, run_script
from tests.runkit.helpers.sweeps import TINY_RUN
from trainlab.callbacks.finite_loss import NonFiniteLossError


def job_folders(sweep_dir: Path) -> list[Path]:
    """The sweep's job folders in job order: each name begins with the job number, padded so that names sort."""
    return sorted(path for path in sweep_dir.iterdir() if path.name.split("_")[0].isdigit())


def job_overrides(job: Path) -> list[str]:
    return yaml.safe_load((job / ".hydra" / "overrides.yaml").read_text())


def status_of(job: Path) -> dict:
    return yaml.safe_load((job / "status.yaml").read_text())


# --- a failing job does not stop the sweep ------------------------------------------------------
LR_ERROR = "optimizer.lr=-1.0 is out of range: expected a learning rate > 0; use a small positive value, e.g. optimizer.lr=0.001."


def test_sweep_records_the_failed_jobs_and_finishes_the_others(seed_sweep: tuple[Path, str]) -> None:
    sweep_dir, output = seed_sweep
    jobs = job_folders(sweep_dir)
    assert len(jobs) == 6  # 3 learning rates x 2 seeds, all launched
    for job in jobs:
        status = status_of(job)
        if "optimizer.lr=-1" in job_overrides(job):
            # A job's status also records its overrides, so a rerun of the sweep knows it.
            assert status == {"status": "failed", "error": LR_ERROR, "overrides": job_overrides(job)}
            assert LR_ERROR in (job / "train.log").read_text()
        else:
            assert status["status"] == "ok"
            # The recorded objective is the final val/loss in the job's own event files.
            assert status["value"] == pytest.approx(read_scalars(job)["val/loss"][-1][1], abs=1e-6)
    assert f"This job failed, the sweep goes on: {LR_ERROR}" in output
    assert "Traceback" not in output  # a user's mistake is one line in a sweep too
    # The sweep ends by saying where it wrote, how its jobs ended, and how to summarise them.
    assert f"Sweep folder: {sweep_dir} (6 jobs: 4 ok, 2 failed)" in output
    assert f"trainlab-summarize {sweep_dir}" in output


@pytest.mark.slow  # a whole sweep
def test_an_unexpected_failure_is_one_line_on_the_console_and_its_traceback_in_the_jobs_log(tmp_path: Path) -> None:
    sweep_dir = tmp_path / "multirun"
    fault = [
        "+callbacks.fault._target_=tests.runkit.helpers.faults.CrashAtFirstBatch",
        "+callbacks.fault.crash=true,false",
    ]
    args = ["-m", *TINY_RUN, "logger=none", *fault, f"hydra.sweep.dir={sweep_dir}"]
    env = {"PYTHONPATH": str(ROOT)}  # the fault's class lives in tests/
    result = run_script("train", [*args, f"paths.log_dir={tmp_path / 'logs'}"], cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    output = result.stdout + result.stderr
    assert "This job failed, the sweep goes on: RuntimeError: something unexpected broke" in output
    assert "Traceback" not in output
    crashed, finished = job_folders(sweep_dir)
    assert "Traceback (most recent call last)" in (crashed / "train.log").read_text()
    assert (status_of(crashed)["status"], status_of(finished)["status"]) == ("failed", "ok")


def test_diverging_run_is_recorded_as_failed(run_dir: Path) -> None:
    # The NaN guard stops the run at the first non-finite loss; the status records its message.
    cfg = compose_config(
        "train", [*TINY_RUN, "optimizer=sgd", "optimizer.lr=1e30", "trainer.max_epochs=1", "logger=none"], run_dir
    )
    with pytest.raises(NonFiniteLossError):
        run(cfg)
    status = status_of(run_dir)
    assert status["status"] == "failed"
    assert status["error"].startswith("The training loss became ")
    assert "the learning rate is likely too high" in status["error"]


def test_failing_single_run_is_recorded_and_still_raises(run_dir: Path) -> None:
    # Settings the schema has no rule for reach torch, which refuses them when the run builds its optimizer.
    cfg = compose_config("train", [*TINY_RUN, "optimizer=adam", "optimizer.betas=[2.0,0.9]", "debug=fdr"], run_dir)
    with pytest.raises(ConfigError, match="Invalid beta parameter at index 0"):
        run(cfg)
    status = status_of(run_dir)
    assert status["status"] == "failed"
    assert status["error"].startswith("optimizer (torch.optim.Adam) refused its settings optimizer.lr=")


def test_optimized_metric_the_run_does_not_log_fails_the_run(run_dir: Path) -> None:
    cfg = compose_config("train", [*TINY_RUN, "optimized_metric=val/accuracy", "debug=fdr"], run_dir)
    with pytest.raises(ConfigError):  # a single run says so in its exit code too (2), not only in status.yaml
        run(cfg)
    error = status_of(run_dir)["error"]
    assert error.startswith("optimized_metric=val/accuracy is not a metric this run logged (it logged: ")
    assert "val/acc," in error


def test_successful_run_records_its_objective(run_dir: Path) -> None:
    cfg = compose_config("train", [*TINY_RUN, "debug=fdr"], run_dir)
    objective = run(cfg)
    status = status_of(run_dir)
    assert {key: status[key] for key in ("status", "optimized_metric", "value")} == {
        "status": "ok",
        "optimized_metric": "val/loss",
        "value": objective,
    }
    # The final results too, so that a run is summarised whichever loggers it had.
    assert status["metrics"]["val/loss"] == objective
    assert set(status["metrics"]) == {"val/loss", "val/acc", "val/acc_best", "test/loss", "test/acc"}


# --- run folders never collide; a plain run loads no sweep plugin -------------------------------
@pytest.fixture(scope="module")
def two_runs_started_together(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    """Two `trainlab-train debug=fdr` processes started back to back, with Python's import timing on."""
    root = tmp_path_factory.mktemp("together")
    command = [str(BIN / "trainlab-train"), *TINY_RUN, "debug=fdr", f"paths.log_dir={root / 'logs'}"]
    env = {**os.environ, "PYTHONPROFILEIMPORTTIME": "1"}
    processes = [
        subprocess.Popen(command, cwd=root, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for _ in range(2)
    ]
    outputs = [process.communicate(timeout=300)[0] for process in processes]
    assert [process.returncode for process in processes] == [0, 0], [output[-3000:] for output in outputs]
    return root / "logs" / "debug" / "runs", outputs


@pytest.mark.slow  # two whole processes side by side
def test_two_runs_started_together_get_their_own_folders(two_runs_started_together: tuple[Path, list[str]]) -> None:
    # Both processes name their folder at Hydra's start-up, within milliseconds of each other; the
    # microseconds in the folder name keep them apart.
    runs_dir, _ = two_runs_started_together
    runs = sorted(runs_dir.iterdir())
    assert len(runs) == 2
    for folder in runs:
        assert status_of(folder)["status"] == "ok"
        assert (folder / ".hydra" / "config.yaml").is_file()


@pytest.mark.slow
def test_plain_run_imports_no_launcher_or_sweeper_package(two_runs_started_together: tuple[Path, list[str]]) -> None:
    _, outputs = two_runs_started_together
    imported = {line.rsplit("|", 1)[-1].strip() for line in outputs[0].splitlines() if line.startswith("import time:")}
    assert "lightning.pytorch" in imported  # the timing is really on
    optional = {"joblib", "submitit", "optuna", "sqlalchemy"}
    assert not {module for module in imported if module.split(".")[0] in optional}


# --- torch threads per job ----------------------------------------------------------------------
def launcher(*overrides: str) -> dict:
    """The launcher settings Hydra composes for these overrides (the plugins' own config schemas)."""
    with hydra_context():
        cfg = compose("train", overrides=list(overrides), return_hydra_config=True)
    return OmegaConf.to_container(cfg.hydra.launcher)


@pytest.mark.parametrize(
    ("overrides", "cores", "threads"),
    [
        ((), 2, None),  # basic: torch's default
        (("hydra/launcher=joblib", "hydra.launcher.n_jobs=2"), 2, 1),
        (("hydra/launcher=joblib", "hydra.launcher.n_jobs=2"), 16, 8),
        (("hydra/launcher=joblib",), 16, 1),  # n_jobs=-1: one job per core
        (("hydra/launcher=joblib", "hydra.launcher.n_jobs=-2"), 16, 1),  # 15 jobs at once
        (("hydra/launcher=joblib", "hydra.launcher.n_jobs=4"), 2, 1),  # never below one
        (("hydra/launcher=submitit_local", "hydra.launcher.cpus_per_task=3"), 16, 3),
    ],
)
def test_parallel_jobs_share_the_cores(overrides: tuple[str, ...], cores: int, threads: int | None) -> None:
    assert threads_per_job("auto", launcher(*overrides), cores) == threads


def test_explicit_thread_count_wins_and_bad_values_are_refused() -> None:
    joblib = launcher("hydra/launcher=joblib", "hydra.launcher.n_jobs=2")
    assert threads_per_job(4, joblib, 2) == 4
    assert threads_per_job(None, joblib, 2) is None
    with pytest.raises(ConfigError, match="extras.num_threads='many' is not a thread count"):
        threads_per_job("many", joblib, 2)


# --- launchers ----------------------------------------------------------------------------------
@pytest.mark.slow
def test_joblib_runs_jobs_in_worker_processes_with_a_share_of_the_cores(tmp_path: Path) -> None:
    sweep_dir = tmp_path / "multirun"
    result = run_script(
        "train",
        [
            "-m",
            "hydra/launcher=joblib",
            "hydra.launcher.n_jobs=2",
            *TINY_RUN,
            "trainer.max_epochs=1",
            "seed=1,2",
            f"hydra.sweep.dir={sweep_dir}",
            f"paths.log_dir={tmp_path / 'logs'}",
        ],
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Joblib.Parallel(n_jobs=2" in result.stdout + result.stderr
    jobs = job_folders(sweep_dir)
    assert ["seed=1" in job_overrides(job) for job in jobs] == [True, False]
    assert ["seed=2" in job_overrides(job) for job in jobs] == [False, True]
    from runkit.process.mode import available_cores

    expected_threads = max(1, available_cores() // 2)
    for job in jobs:
        assert status_of(job)["status"] == "ok"
        assert f"torch uses {expected_threads} thread(s) in this job" in (job / "train.log").read_text()
        assert "test/acc" in read_scalars(job)


@pytest.mark.slow
def test_submitit_local_runs_each_job_as_a_submitit_job(tmp_path: Path) -> None:
    sweep_dir = tmp_path / "multirun"
    result = run_script(
        "train",
        [
            "-m",
            "hydra/launcher=submitit_local",
            "hydra.launcher.timeout_min=10",
            "hydra.launcher.cpus_per_task=1",
            *TINY_RUN,
            "trainer.max_epochs=1",
            "seed=1,2",
            f"hydra.sweep.dir={sweep_dir}",
            f"paths.log_dir={tmp_path / 'logs'}",
        ],
        cwd=tmp_path,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    jobs = job_folders(sweep_dir)
    assert len(jobs) == 2
    # submitit keeps each job's pickled call and its output under .submitit/<job id>/
    assert len(list((sweep_dir / ".submitit").glob("*/*_result.pkl"))) == 2
    for job in jobs:
        assert status_of(job)["status"] == "ok"
        assert "torch uses 1 thread(s) in this job" in (job / "train.log").read_text()


# --- TensorBoard on a multirun folder -----------------------------------------------------------
def test_tensorboard_on_the_multirun_folder_compares_jobs_by_their_hyperparameters(
    seed_sweep: tuple[Path, str],
) -> None:
    from tensorboard.backend.event_processing.plugin_event_multiplexer import EventMultiplexer
    from tensorboard.plugins.hparams import metadata
    from tensorboard.util import tensor_util

    sweep_dir, _ = seed_sweep
    # What `tensorboard --logdir <multirun>` loads: one run per folder holding event files.
    multiplexer = EventMultiplexer(size_guidance={"scalars": 0, "tensors": 0})
    multiplexer.AddRunsFromDirectory(str(sweep_dir))
    multiplexer.Reload()
    hparams_runs = multiplexer.PluginRunToTagToContent(metadata.PLUGIN_NAME)
    finished = [job for job in job_folders(sweep_dir) if status_of(job)["status"] == "ok"]
    assert len(finished) == 4
    # Each job's run is its folder, whose name alone says what sets it apart from the others.
    assert {job.name for job in finished} <= set(hparams_runs)
    experiment = next(
        metadata.parse_experiment_plugin_data(tags[metadata.EXPERIMENT_TAG])
        for tags in hparams_runs.values()
        if metadata.EXPERIMENT_TAG in tags
    )
    metric_tags = {info.name.tag for info in experiment.metric_infos}
    assert {"val/loss", "test/acc"} <= metric_tags
    for job in finished:
        run = job.name
        start = metadata.parse_session_start_info_plugin_data(hparams_runs[run][metadata.SESSION_START_INFO_TAG])
        overrides = job_overrides(job)
        # Numbers as text, as the override writes them: 0.05 and 0.2, not 0.050000 and 0.20000; 2, not 2.0000.
        assert f"optimizer.lr={start.hparams['optimizer.lr'].string_value}" in overrides
        assert f"seed={start.hparams['seed'].string_value}" in overrides
        # The HPARAMS tab shows each metric's last scalar in the same run: the job's real result.
        last = multiplexer.Tensors(run, "val/loss")[-1]  # TensorBoard stores scalars as tensors
        assert float(tensor_util.make_ndarray(last.tensor_proto)) == pytest.approx(status_of(job)["value"], abs=1e-6)


def test_a_sweeps_job_folders_are_their_padded_number_then_what_the_sweep_varies(
    seed_sweep: tuple[Path, str],
) -> None:
    sweep_dir, _ = seed_sweep  # optimizer.lr=0.05,0.2,-1 x seed=1,2, with optimizer=sgd and trainer.max_epochs=2
    jobs = sorted(path.name for path in sweep_dir.iterdir() if path.is_dir())
    assert jobs == [
        "000_optimizer.lr-0.05_seed-1",
        "001_optimizer.lr-0.05_seed-2",
        "002_optimizer.lr-0.2_seed-1",
        "003_optimizer.lr-0.2_seed-2",
        "004_optimizer.lr--1_seed-1",
        "005_optimizer.lr--1_seed-2",
    ]
    # Each job's runs in its loggers are named by the same values (jobs 4 and 5 failed before their loggers started).
    # (TensorBoard's run is the job folder itself: its name is the folder's.)
    assert any((sweep_dir / jobs[0]).glob("events.out.tfevents.*"))
