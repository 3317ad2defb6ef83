"""Run folders named by what sets them apart: a single run's by its start time then its overrides, a sweep's jobs
by their padded number then what the sweep varies; names that sort, stay apart, and read back as paths."""

import re
from datetime import datetime
from pathlib import Path

import pytest
from hydra import compose
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import OmegaConf

from runkit.runs import resolvers
from runkit.runs.names import (
    SWEEP_KEYS_FILE,
    job_folder_name,
    run_folder_name,
    safe_name,
    short_value,
    what_sets_apart,
)
from runkit.runs.reading import natural_key
from runkit.runs.resolvers import run_folder
from tests.runkit.helpers.config import hydra_context

STAMP = r"\d{4}-\d\d-\d\d_\d\d-\d\d-\d\d_\d{6}"  # the start time, to the microsecond


def hydra_config(*overrides: str) -> OmegaConf:
    """The `hydra` section Hydra composes for `trainlab-train <overrides>`."""
    with hydra_context():
        return compose("train", overrides=list(overrides), return_hydra_config=True).hydra


def write_sweep_keys(sweep_dir: Path, *varying: str) -> Path:
    """A sweep folder as a sweep leaves it when it starts: the keys it varies recorded (runs/folder.py ReportSweep)."""
    sweep_dir.mkdir(parents=True, exist_ok=True)
    OmegaConf.save(OmegaConf.create({"varying": list(varying)}), sweep_dir / SWEEP_KEYS_FILE)
    return sweep_dir


# --- a single run ------------------------------------------------------------------------------------------------
def test_a_runs_folder_is_its_start_time_then_its_experiment_and_overrides(tmp_path: Path) -> None:
    hydra = hydra_config(
        "optimizer.lr=0.01", "experiment=mnist_cnn", "seed=2", f"paths.log_dir={tmp_path}", "extras.print_config=false"
    )
    folder = Path(hydra.run.dir)
    assert folder.parent == tmp_path / "train" / "runs"
    # Where files go and how the process runs (paths.*, extras.*) say nothing about the run: left out.
    assert re.fullmatch(f"{STAMP}_mnist_cnn_optimizer.lr-0.01_seed-2", folder.name), folder.name
    assert Path(hydra.run.dir) == folder  # read again in the same process: the same folder


def test_a_run_without_overrides_is_named_by_its_start_time_alone(tmp_path: Path) -> None:
    assert re.fullmatch(STAMP, Path(hydra_config(f"paths.log_dir={tmp_path}").run.dir).name)


def test_runs_started_in_the_same_second_get_apart_and_sort_by_time() -> None:
    earlier = run_folder_name("2026-12-02_16-16-22_000001", ["seed=2"])
    later = run_folder_name("2026-12-02_16-16-22_000002", ["optimizer.lr=0.01"])
    assert earlier != later and sorted([later, earlier]) == [earlier, later]
    assert (earlier, later) == ("2026-12-02_16-16-22_000001_seed-2", "2026-12-02_16-16-22_000002_optimizer.lr-0.01")
    # A long list of overrides is cut to 80 characters that keep the time first and a hash of the whole.
    long = [
        run_folder_name("2026-12-02_16-16-22_000001", [f"model.net.channels=[{'64,' * 30}{last}]"]) for last in (1, 2)
    ]
    assert all(len(name) == 80 and name.startswith("2026-12-02_16-16-22_000001_model.net.channels-") for name in long)
    assert long[0] != long[1]


def test_what_sets_a_run_apart_leaves_out_where_its_files_go_and_how_it_runs() -> None:
    overrides = [
        "data=mnist",
        "paths.log_dir=/scratch/logs",
        "local=cluster",
        "extras.num_threads=4",
        "task_name=study",
        "ckpt_path=/runs/a/checkpoints/last.ckpt",
        "+trainer.gradient_clip_val=1.0",
        "~callbacks.early_stopping",
        "optimizer.lr=0.00025529246739698907",
        "experiment=mnist_cnn",
    ]
    expected = "mnist_cnn_data=mnist,trainer.gradient_clip_val=1,~callbacks.early_stopping,optimizer.lr=0.0002553"
    assert what_sets_apart(overrides) == expected


class JustBeforeMidnight(datetime):
    """A clock that stands at one moment, so that no day ends between the ranks and the expected name."""

    @classmethod
    def now(cls, tz: object = None) -> datetime:
        return datetime(2026, 12, 2, 23, 59, 59, 999999)


def test_the_ranks_of_an_srun_run_name_one_folder_alike(monkeypatch: pytest.MonkeyPatch) -> None:
    # `srun --ntasks=2 trainlab-train seed=2`: two processes, one command line, one folder named by the SLURM step.
    for name, value in {"SLURM_STEP_NUM_TASKS": "2", "SLURM_JOB_ID": "12", "SLURM_STEP_ID": "0"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(resolvers, "datetime", JustBeforeMidnight)
    ranks = [run_folder(["seed=2", "paths.log_dir=/logs"]) for _ in range(2)]
    assert ranks == ["2026-12-02_slurm-12.0_seed-2"] * 2


def test_a_folder_reads_back_as_a_path_on_the_command_line() -> None:
    # Hydra reads = and , in an override's value as syntax: a folder spells key=value,key=value without them,
    # so that `ckpt_path=<folder>/checkpoints/last.ckpt` and `hydra.run.dir=<folder>` work as typed.
    names = [
        run_folder_name("2026-12-02_16-16-22_000001", ["optimizer.lr=-1", "model.net.channels=[8,16]", "~x", "+y=a@b"]),
        job_folder_name(3, ["optimizer.lr=0.01", "seed=2"], "/no/sweep/keys/here"),
    ]
    for name in names:
        path = f"logs/train/runs/{name}/checkpoints/last.ckpt"
        assert OverridesParser.create().parse_override(f"ckpt_path={path}").value() == path, name


# --- a sweep's jobs ----------------------------------------------------------------------------------------------
def test_a_jobs_folder_comes_from_its_own_config(tmp_path: Path) -> None:
    # What every launcher resolves (basic, joblib, submitit in the job; trainlab's SLURM launcher before submitting):
    # hydra.sweep.subdir, from the job's number, its overrides and the keys its sweep folder recorded.
    sweep_dir = write_sweep_keys(tmp_path / "sweep", "optimizer.lr", "seed")
    job = ["seed=2", "optimizer.lr=0.01", "data=synthetic_classification", f"paths.log_dir={tmp_path}"]
    hydra = hydra_config(*job, "hydra.job.num=3", f"hydra.sweep.dir={sweep_dir}")
    assert hydra.sweep.subdir == "003_optimizer.lr-0.01_seed-2" == job_folder_name(3, job, sweep_dir)
    # A sweep that varies nothing (`-m seed=1`) names its job by what sets it apart, as a single run.
    assert job_folder_name(0, job, tmp_path / "no_keys") == "000_seed-2_optimizer.lr-0.01_data-synthetic_classification"


def test_job_folders_sort_by_job_number(tmp_path: Path) -> None:
    sweep_dir = write_sweep_keys(tmp_path, "seed")
    numbers = [0, 1, 2, 9, 10, 11, 99, 100, 101, 999]
    names = [job_folder_name(number, [f"seed={number % 3}"], sweep_dir) for number in reversed(numbers)]
    assert sorted(names) == [job_folder_name(number, [f"seed={number % 3}"], sweep_dir) for number in numbers]
    # Past 999 the number gets wider; trainlab-summarize still lists the jobs by number.
    wider = [*names, job_folder_name(1000, ["seed=1"], sweep_dir)]
    assert sorted(wider, key=lambda name: natural_key(Path(name)))[-2:] == ["999_seed-0", "1000_seed-1"]


def test_a_run_name_is_a_short_safe_folder_name() -> None:
    assert safe_name("optimizer=sgd,seed=2") == "optimizer=sgd,seed=2"
    assert safe_name("data.data_dir=/my data/mnist,tags=[a, b]") == "data.data_dir=_my_data_mnist,tags=_a,_b_"
    first, second = (safe_name("model.net.channels=[" + "64," * 40 + str(last) + "]") for last in (1, 2))
    assert len(first) == len(second) == 80
    assert first != second  # cut names keep a hash of the whole name


def test_a_searchs_numbers_are_named_to_four_digits() -> None:
    assert [short_value(text) for text in ("0.00025529246739698907", "1e-3", "0.05", "12", "sgd", "[1,2]")] == [
        "0.0002553",
        "0.001",
        "0.05",
        "12",
        "sgd",
        "[1,2]",
    ]
