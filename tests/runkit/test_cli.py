"""The console scripts as a user runs them: real subprocesses, real Hydra, real exit codes."""

import gc
import logging
import os
import re
import shlex
import shutil
from pathlib import Path

import pytest

from runkit.cli import run_console_script
from runkit.config import CONFIG_DIR
from runkit.runs.reading import read_scalars
from runkit.training import train
from tests.runkit.helpers.config import compose_config
from tests.runkit.helpers.process import run_script

TINY = [
    "data=synthetic_classification",
    "model=mlp",
    "data.num_train=512",
    "data.num_val=128",
    "data.num_test=128",
    "data.batch_size=64",
    "trainer.max_epochs=1",
    "extras.print_config=false",
]


def test_unknown_group_option_lists_the_available_ones(tmp_path: Path) -> None:
    result = run_script("train", ["optimizer=adamm", f"paths.log_dir={tmp_path}"], cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "Error: optimizer=adamm is not an option of optimizer; the options are: adam, adamw, gd, momentum, rmsprop, "
        "sgd (did you mean adam?)."
    ]


@pytest.mark.slow  # a whole process (~5 s): the fast suite keeps to two minutes
def test_model_that_does_not_fit_the_data_exits_with_one_line(tmp_path: Path) -> None:
    result = run_script("train", ["model=linear", f"paths.log_dir={tmp_path}"], cwd=tmp_path)
    assert result.returncode == 2
    # The whole console: no `Config:` or `Overrides:` line before it, so the mistake is one line.
    assert (result.stdout + result.stderr).strip().splitlines() == [
        "Error: model=linear is a regression model but data=synthetic_images is a classification dataset; "
        "choose a classification model."
    ]


def test_train_writes_one_run_folder_and_says_where(tmp_path: Path) -> None:
    result = run_script("train", [*TINY, f"paths.log_dir={tmp_path / 'logs'}"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    runs = list((tmp_path / "logs" / "train" / "runs").iterdir())
    assert len(runs) == 1
    run = runs[0]
    assert (run / ".hydra" / "config.yaml").is_file()
    assert (run / "train.log").is_file()
    assert (run / "checkpoints" / "last.ckpt").is_file()
    assert "test/acc" in read_scalars(run)
    log = (run / "train.log").read_text()
    assert f"Run folder: {run}" in log
    # The TensorBoard command works as printed, from a shell without the environment activated,
    # and points at the folder this run wrote to.
    (command,) = [line.split("View the curves: ", 1)[1] for line in log.splitlines() if "View the curves: " in line]
    program, *module, flag, folder = shlex.split(command)
    assert shutil.which(program, path=os.defpath) or Path(program).is_file()
    assert (module, flag, Path(folder)) == (["-m", "runkit.tensorboard"], "--logdir", run)


@pytest.mark.slow  # two processes of ~12 s: run by make test-full and CI
def test_ddp_cpu_trains_and_tests_with_two_processes(tmp_path: Path) -> None:
    run = tmp_path / "ddp_run"
    result = run_script("train", [*TINY, "trainer=ddp_cpu", f"hydra.run.dir={run}"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    # Rank 0 joins a world of 2 (the process group waits for rank 1); rank 1 logs warnings only.
    assert "Initializing distributed: GLOBAL_RANK: 0, MEMBER: 1/2" in result.stdout + result.stderr
    # One run folder and one set of event files, written by rank 0 only.
    assert len(list(run.glob("events.out.tfevents.*"))) >= 1
    scalars = read_scalars(run)
    assert {"val/acc", "test/acc"} <= set(scalars)
    assert len(scalars["test/acc"]) == 1
    assert (run / "checkpoints" / "last.ckpt").is_file()


def test_console_script_keeps_the_exit_status_and_skips_the_last_collection() -> None:
    """run_console_script lets Python exit as usual, with the objects of the run frozen out of the final GC."""

    def stops_with_a_user_error() -> None:
        raise SystemExit(2)

    try:
        with pytest.raises(SystemExit) as stop:
            run_console_script(stops_with_a_user_error, "train")
        assert stop.value.code == 2
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()


@pytest.mark.parametrize("command", ["train", "eval", "predict"])
def test_help_lists_every_config_group_with_its_options_and_examples(command: str, tmp_path: Path) -> None:
    result = run_script(command, ["--help"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    page = result.stdout
    assert page.startswith(f"trainlab-{command}: ")
    for group in sorted(path for path in Path(CONFIG_DIR).iterdir() if path.is_dir() and path.name != "hydra"):
        options = sorted(option.stem for option in group.glob("*.yaml"))
        if options:  # the listing comes from the files, so a new option shows up by itself
            assert f"{group.name}: {', '.join(options)}" in page.splitlines()
    assert "Examples:" in page and f"  trainlab-{command} " in page
    assert "== Config ==" not in page and len(page.splitlines()) < 50  # no dump of the whole config


@pytest.mark.slow  # a whole trainlab process (~5 s)
def test_the_console_says_each_thing_once_and_no_advertising(tmp_path: Path) -> None:
    # CUDA hidden: Lightning's device line reads the same on a machine with a GPU.
    run = [*TINY, f"hydra.run.dir={tmp_path / 'run'}"]
    result = run_script("train", run, cwd=tmp_path, env={"CUDA_VISIBLE_DEVICES": ""})
    assert result.returncode == 0, result.stderr[-3000:]
    console = result.stdout + result.stderr
    assert "GPU available" not in console and console.count("Device: cpu, 1 process") == 1  # said once, our words
    assert "Tip:" not in console and "LeafSpec" not in console  # nothing a user cannot act on
    assert "Trainer already configured with model summary callbacks" not in console
    assert "smaller than the logging interval" not in console  # 8 batches an epoch, fewer than log_every_n_steps


def test_early_stopping_says_when_and_why(run_dir: Path, caplog: pytest.LogCaptureFixture) -> None:
    overrides = [*TINY, "trainer.max_epochs=50", "callbacks.early_stopping.patience=1", "test=false"]
    with caplog.at_level(logging.INFO, logger="runkit.fit_watch"):
        train(compose_config("train", overrides, run_dir))
    (line,) = [record.getMessage() for record in caplog.records if record.getMessage().startswith("Stopped early")]
    stopped = re.fullmatch(
        r"Stopped early after epoch (\d+) of 50: val/loss did not improve for 1 epochs \(best [\d.]+\)\.", line
    )
    assert stopped and int(stopped[1]) < 50
