"""A run's name in MLflow and W&B, whose runs tables show only its first 20-odd characters: what sets the run apart
comes first and its start time last, keys by their last part, and a long name is cut after a whole override."""

from pathlib import Path

from omegaconf import OmegaConf

from runkit.runs.names import SWEEP_KEYS_FILE, run_folder_name, run_name, safe_name
from tests.runkit.helpers.config import compose_config

# MLflow 3's runs table shows a name's first 22 characters before its ellipsis, in a 1600-px window.
SHOWN = 22
FOLDER = "2026-12-06_19-29-14_482113"  # a single run's folder as runkit.runs.resolvers names it


def logger_name(tmp_path: Path, folder: str, *overrides: str) -> str:
    """The name `trainlab-train <overrides>` gives its run in MLflow and W&B, its folder being `folder`."""
    compose_config("train", list(overrides), tmp_path / folder, quiet=False, validate=False)
    return run_name(tmp_path / folder)


def sweep_job_name(tmp_path: Path, varying: list[str], number: int, *overrides: str) -> str:
    """The same for job `number` of a sweep over `varying`, started at 19:29:14."""
    sweep_dir = tmp_path / "2026-12-06_19-29-14_000001"
    sweep_dir.mkdir(exist_ok=True)
    OmegaConf.save(OmegaConf.create({"varying": varying}), sweep_dir / SWEEP_KEYS_FILE)
    multirun = ["hydra.mode=MULTIRUN", f"hydra.job.num={number}", f"hydra.sweep.dir={sweep_dir}"]
    return logger_name(tmp_path, "job", *multirun, *overrides)


def test_a_single_run_is_named_by_what_sets_it_apart_then_its_start_time(tmp_path: Path) -> None:
    overrides = ["experiment=mnist_cnn", "optimizer.lr=0.01", f"paths.log_dir={tmp_path}"]
    assert logger_name(tmp_path, FOLDER, *overrides) == "mnist_cnn_lr=0.01_2026-12-06_19-29-14"
    # With nothing on the command line, the recipe's choices.
    assert logger_name(tmp_path, FOLDER) == "model=cnn,data=synthetic_images_2026-12-06_19-29-14"
    assert logger_name(tmp_path, FOLDER, "model=mlp", "data=synthetic_classification").startswith("model=mlp,data=")


def test_a_run_in_a_folder_named_on_the_command_line_is_named_by_it(tmp_path: Path) -> None:
    assert logger_name(tmp_path, "baseline", "optimizer.lr=0.01") == "baseline"


def test_a_sweeps_jobs_differ_in_the_characters_a_runs_table_shows(tmp_path: Path) -> None:
    jobs = [(lr, seed) for lr in ("0.01", "0.001") for seed in (1, 2)]
    names = [
        sweep_job_name(tmp_path, ["optimizer.lr", "seed"], number, f"optimizer.lr={lr}", f"seed={seed}")
        for number, (lr, seed) in enumerate(jobs)
    ]
    assert names[3] == "lr=0.001,seed=2_2026-12-06_19-29-14#003"
    assert len({name[:SHOWN] for name in names}) == len(jobs)


def test_keys_are_shortened_only_as_far_as_they_stay_apart(tmp_path: Path) -> None:
    overrides = ["optimizer.lr=0.01", "+scheduler.lr=0.1", "~callbacks.early_stopping"]
    name = logger_name(tmp_path, FOLDER, *overrides)
    assert name == "optimizer.lr=0.01,scheduler.lr=0.1,~early_stopping_2026-12-06_19-29-14"


def test_a_long_name_is_cut_after_a_whole_override_and_stays_unique_in_its_sweep(tmp_path: Path) -> None:
    varying = ["model.net.channels", "model.net.dropout", "optimizer.weight_decay", "optimizer.lr", "seed"]
    common = ["model.net.channels=[8,16,32,64,128,256]", "model.net.dropout=0.3", "optimizer.weight_decay=0.0001"]
    names = [
        sweep_job_name(tmp_path, varying, number, *common, "optimizer.lr=0.01", f"seed={number}") for number in (0, 1)
    ]
    assert names == [f"channels=[8,16,32,64,128,256],dropout=0.3,…_2026-12-06_19-29-14#00{number}" for number in (0, 1)]


def test_a_long_folder_name_is_cut_after_a_whole_override() -> None:
    overrides = ["data.num_folds=5", "data.fold=2", "model.net.dropout=0.3", "optimizer.weight_decay=0.0001"]
    folder = run_folder_name(FOLDER, ["experiment=mnist_cnn", *overrides])
    head, digest = folder.rsplit("_", 1)
    assert len(folder) <= 80 and len(digest) == 8
    assert head == f"{FOLDER}_mnist_cnn_data.num_folds-5_data.fold-2"  # before: `..._model.net.dropou_<digest>`
    # A value with commas of its own is not an override boundary: one that alone is too long is cut where room ends.
    assert len(safe_name("model.net.channels=[" + "64," * 40 + "1]")) == 80
