"""What the console scripts print when their output goes to a file or a pipe (a batch job, CI, `> out.txt`):
what runs and where, why it stopped, the final metrics and where to look; each line once, and no line a user
cannot act on."""

import logging
import subprocess
import sys
from pathlib import Path

import lightning.pytorch as pl
import pytest
import torch
from lightning.pytorch.callbacks import RichProgressBar
from lightning.pytorch.demos.boring_classes import BoringModel
from lightning.pytorch.loggers import TensorBoardLogger

from runkit.callbacks.model_summary import readable_size
from runkit.callbacks.progress_bar import ThrottledRichProgressBar
from runkit.config import ConfigError
from runkit.process import hardware
from runkit.training import show_config, start_run
from tests.runkit.helpers.config import compose_config
from tests.runkit.helpers.process import run_script

# The default training, shortened: less data and one epoch. Nothing here hides output.
SHORT = ["trainer.max_epochs=1", "data.num_train=512", "data.num_val=128", "data.num_test=128"]

# Lines that trainlab used to print and a user cannot act on (each was seen in a default run, eval or predict).
NOISE = {
    "the config tree": "├──",
    "Lightning's model summary table": "FLOPs",
    "Lightning's note on its own summary": "Trainer already configured with model summary callbacks",
    "Lightning's adverts": "Tip:",
    "a deprecation inside Lightning": "LeafSpec",
    "the log interval on short epochs": "smaller than the logging interval",
    "the logger's version on the bar": "v_num",
    "TensorBoard's reader": "Directory watcher",
    "Lightning's sync_dist advice": "It is recommended to use `self.log(",
    "Lightning's own console handler": "INFO: ",
    "a table of the test metrics that the final-metrics line gives": "┃        Test metric",
    "the checkpoint's path twice before testing": "Restoring states from the checkpoint path",
}


def console(result: subprocess.CompletedProcess) -> str:
    return result.stdout + result.stderr


def assert_no_noise(text: str) -> None:
    for what, line in NOISE.items():
        assert line not in text, f"{what} is on the console:\n{text}"


@pytest.fixture(scope="module")
def default_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess, Path]:
    """`trainlab-train` with the default config, shortened, its output piped; and its run folder."""
    cwd = tmp_path_factory.mktemp("default_run")
    result = run_script("train", [*SHORT, f"paths.log_dir={cwd / 'logs'}"], cwd=cwd)
    assert result.returncode == 0, console(result)[-3000:]
    (run,) = (cwd / "logs" / "train" / "runs").iterdir()
    return result, run


def test_a_default_run_prints_what_a_user_needs_in_at_most_40_lines(default_run) -> None:
    result, run = default_run
    text = console(result)
    assert len(text.splitlines()) <= 40, text
    # What runs and where: the chosen options and the command line's changes, not the whole config.
    assert "Config: data=synthetic_images model=cnn optimizer=adam scheduler=none" in text
    assert f"Overrides: {' '.join(SHORT)} paths.log_dir=" in text
    assert f"Training; run folder: {run}\n" in text
    assert "Model: net (CNN); 215 K parameters, 0.9 MB" in text
    # The device once, in trainlab's words, for Lightning's `GPU available: ...` and `TPU available: ...`.
    assert "GPU available" not in text and "TPU available" not in text
    assert text.count("Device: cpu, 1 process, precision 32-true") == 1
    # Why it stopped, what came out, where to look.
    assert "`Trainer.fit` stopped: `max_epochs=1` reached." in text
    assert "Final metrics: test/acc=" in text
    assert f"Run folder: {run}\n" in text
    assert f"--logdir {run}\n" in text
    assert_no_noise(text)
    assert "CONFIG" in (run / "config_tree.log").read_text()  # the whole config is in the run folder


@pytest.mark.slow  # two more processes: ~11 s
@pytest.mark.parametrize("command", ["eval", "predict"])
def test_eval_and_predict_print_each_line_once_without_adverts(command: str, default_run, tmp_path: Path) -> None:
    _, run = default_run
    checkpoint = run / "checkpoints" / "last.ckpt"
    result = run_script(command, [f"ckpt_path={checkpoint}", f"paths.log_dir={tmp_path}"], cwd=tmp_path)
    assert result.returncode == 0, console(result)[-3000:]
    text = console(result)
    assert "GPU available" not in text and text.count("Device: cpu, 1 process") == 1  # said once, in our words
    assert "Test metrics: test/acc=" in text if command == "eval" else "predictions to" in text
    assert_no_noise(text)


@pytest.mark.slow  # one more process: ~5 s, and resume tests cover the finished run itself
def test_a_finished_run_run_again_says_so_and_its_metrics(default_run) -> None:
    result, run = default_run
    again = run_script("train", [*SHORT, "ckpt_path=last", f"hydra.run.dir={run}"], cwd=run.parent)
    assert again.returncode == 0, console(again)[-3000:]
    text = console(again)
    assert "This run had already finished" in text and f"Run folder: {run}\n" in text
    assert len(text.splitlines()) <= 5, text  # the final metrics read back from the event files, quietly
    assert_no_noise(text)


@pytest.mark.slow  # a whole process (~5 s): the fast suite keeps to two minutes
def test_an_error_after_composition_is_not_buried(tmp_path: Path) -> None:
    missing = tmp_path / "missing.ckpt"
    result = run_script("train", [f"ckpt_path={missing}", f"paths.log_dir={tmp_path}"], cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].startswith(f"Error: ckpt_path={missing} does not exist")
    assert len(console(result).splitlines()) <= 3, console(result)  # the config summary and the error
    assert "CONFIG" not in console(result)


@pytest.mark.slow  # two processes under DDP: ~15 s
def test_ddp_logs_the_templates_metrics_without_sync_dist_advice(tmp_path: Path) -> None:
    result = run_script("train", [*SHORT, "trainer=ddp_cpu", f"paths.log_dir={tmp_path}"], cwd=tmp_path)
    assert result.returncode == 0, console(result)[-3000:]
    assert "val/acc_best=" in console(result)
    assert_no_noise(console(result))


def test_the_progress_bar_leaves_out_the_loggers_version(tmp_path: Path) -> None:
    bar = ThrottledRichProgressBar()
    logger = TensorBoardLogger(tmp_path, name="tensorboard", version="optimizer.lr=0.1")  # a sweep job's name
    trainer = pl.Trainer(max_steps=1, limit_val_batches=0, logger=logger, callbacks=[bar], accelerator="cpu", devices=1)
    model = BoringModel()
    trainer.fit(model)
    assert "v_num" in RichProgressBar.get_metrics(bar, trainer, model)  # Lightning's own bar shows it
    assert "v_num" not in bar.get_metrics(trainer, model)


@pytest.mark.parametrize("setting", ["summary", "true"])
def test_the_config_summary_names_the_choices_and_the_overrides(
    setting: str, run_dir: Path, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture
) -> None:
    cfg_setting = f"extras.print_config={setting}"
    cfg = compose_config("train", ["model=mlp", "optimizer.lr=0.01", cfg_setting], run_dir)
    with caplog.at_level(logging.INFO, logger="runkit.training"):
        start_run(cfg)
        show_config(cfg)
    lines = [record.getMessage() for record in caplog.records if record.name == "runkit.training"]
    assert lines[0].startswith("Config: data=synthetic_images model=mlp optimizer=adam scheduler=none")
    assert lines[1].startswith("Overrides: ") and lines[1].endswith(f" model=mlp optimizer.lr=0.01 {cfg_setting}")
    assert "CONFIG" not in capsys.readouterr().out
    assert "CONFIG" in (run_dir / "config_tree.log").read_text()


def test_the_whole_tree_on_request_and_nothing_when_off(run_dir: Path, capsys: pytest.CaptureFixture) -> None:
    for setting in ("tree", "false"):
        cfg = compose_config("train", [f"extras.print_config={setting}"], run_dir)
        start_run(cfg)
        show_config(cfg)
        out = capsys.readouterr().out
        assert "CONFIG" in out if setting == "tree" else out == ""
    assert "CONFIG" in (run_dir / "config_tree.log").read_text()  # kept whatever the console shows
    with pytest.raises(ConfigError, match=r"extras.print_config=yes is not a choice; use summary, tree or false"):
        start_run(compose_config("train", ["extras.print_config=yes"], run_dir))


@pytest.mark.slow  # a two-job sweep: ~10 s
def test_a_sweep_names_each_jobs_folder_and_the_viewer_once(tmp_path: Path) -> None:
    """Each job: its folder, progress and final metrics; the TensorBoard command once, for the whole sweep."""
    sweep = tmp_path / "sweep"
    result = run_script(
        "train", ["-m", *SHORT, "seed=1,2", f"hydra.sweep.dir={sweep}", f"paths.log_dir={tmp_path}"], cwd=tmp_path
    )
    text = console(result)
    assert result.returncode == 0, text[-3000:]
    assert text.count("Final metrics: test/acc=") == 2
    (viewer,) = [line for line in text.splitlines() if "View the curves" in line]
    python, command = viewer.removeprefix("View the curves: ").split(" ", 1)
    assert (Path(python).parent, command) == (Path(sys.executable).parent, f"-m runkit.tensorboard --logdir {sweep}")
    assert_no_noise(text)


@pytest.mark.parametrize(
    ("megabytes", "shown"), [(0.86, "0.9 MB"), (12.5, "12.5 MB"), (0.0388, "38.8 KB"), (0.000012, "12 bytes")]
)
def test_the_model_size_is_shown_in_a_unit_that_shows_it(megabytes: float, shown: str) -> None:
    assert readable_size(megabytes) == shown  # a small model was `0.0 MB`


@pytest.mark.parametrize(
    ("processes", "precision", "gpu", "line"),
    [
        (1, "32-true", False, "Device: cpu, 1 process, precision 32-true"),
        (2, "bf16-mixed", False, "Device: cpu, 2 processes, precision bf16-mixed"),
        (
            1,
            "32-true",
            True,
            "Device: cpu, 1 process, precision 32-true; a CUDA GPU is here but unused (trainer=gpu trains on it)",
        ),
    ],
)
def test_the_device_line_says_what_trains_and_an_unused_gpu(
    processes: int, precision: str, gpu: bool, line: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(hardware, "gpu_here", lambda: gpu)  # no GPU on this machine: its answer fed in
    assert hardware.device_line(torch.device("cpu"), processes, precision) == line
