"""Resuming a run: `ckpt_path=last` continues the run in its folder, with the same results as an unbroken run."""

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
import torch

from runkit.config import ConfigError
from runkit.runs.reading import read_scalars
from runkit.runs.resume import continue_event_files
from runkit.runs.status import read_status
from runkit.training import run, train
from tests.runkit.helpers.config import compose_config
from tests.runkit.helpers.process import BIN, run_script
from tests.runkit.helpers.runs import TINY_MLP

TINY = [*TINY_MLP, "trainer.deterministic=true"]
FINAL = ("val/acc", "val/loss", "val/acc_best", "test/acc", "test/loss")


def test_resumed_run_ends_like_an_unbroken_one(tmp_path: Path) -> None:
    unbroken = train(compose_config("train", [*TINY, "trainer.max_epochs=3"], tmp_path / "logs" / "unbroken"))
    resumed_dir = tmp_path / "logs" / "resumed"
    train(compose_config("train", [*TINY, "trainer.max_epochs=2"], resumed_dir))
    resumed = train(compose_config("train", [*TINY, "trainer.max_epochs=3", "ckpt_path=last"], resumed_dir))
    assert {k: resumed[k] for k in FINAL} == {k: unbroken[k] for k in FINAL}
    # One TensorBoard run, continued: the same curve, one point per epoch, as the unbroken run's.
    scalars = read_scalars(resumed_dir)
    assert scalars["val/acc"] == read_scalars(tmp_path / "logs" / "unbroken")["val/acc"]
    assert len(scalars["val/acc"]) == 3
    assert {path.parent for path in resumed_dir.rglob("events.out.tfevents.*")} == {resumed_dir}


def test_last_checkpoint_holds_the_latest_epoch_when_the_monitored_metric_gets_worse(run_dir: Path) -> None:
    """monitor.mode=max on val/loss makes every epoch after the first look worse; last.ckpt still follows the run."""
    overrides = [*TINY, "trainer.max_epochs=3", "monitor.mode=max", "callbacks.early_stopping=null", "test=false"]
    train(compose_config("train", overrides, run_dir))
    checkpoints = run_dir / "checkpoints"
    last = torch.load(checkpoints / "last.ckpt", map_location="cpu", weights_only=True)
    assert (last["epoch"], last["global_step"]) == (2, 24)  # 8 batches an epoch
    best = [path.name for path in checkpoints.glob("epoch_*.ckpt")]
    assert best == ["epoch_001.ckpt"]  # the highest val/loss is after the first epoch, before the loss falls


def test_resuming_a_finished_run_trains_nothing_and_stays_ok(run_dir: Path) -> None:
    objective = run(compose_config("train", [*TINY, "trainer.max_epochs=2"], run_dir))
    curves = read_scalars(run_dir)
    status = read_status(run_dir)
    assert (status["status"], status["value"]) == ("ok", objective)
    again = run(compose_config("train", [*TINY, "trainer.max_epochs=2", "ckpt_path=last"], run_dir))
    assert again == objective
    assert read_status(run_dir) == status
    assert read_scalars(run_dir) == curves  # no epoch trained or tested again


def test_resume_without_last_checkpoint_is_a_clear_error(run_dir: Path) -> None:
    cfg = compose_config("train", [*TINY, "ckpt_path=last"], run_dir)
    with pytest.raises(ConfigError) as error:
        train(cfg)
    assert str(error.value) == (
        f"ckpt_path=last found no last.ckpt in {run_dir / 'checkpoints'}; set hydra.run.dir to the folder of the run "
        "to resume (e.g. hydra.run.dir=logs/train/runs/<run>) or give a checkpoint file as ckpt_path=<path>."
    )


def test_fresh_run_refuses_a_folder_with_checkpoints(run_dir: Path) -> None:
    (run_dir / "checkpoints").mkdir(parents=True)
    (run_dir / "checkpoints" / "last.ckpt").write_bytes(b"another run's weights")
    with pytest.raises(ConfigError) as error:
        train(compose_config("train", [*TINY, "debug=fdr"], run_dir))
    assert str(error.value) == (
        f"hydra.run.dir={run_dir} already holds checkpoints (last.ckpt); start a fresh run in a new folder, "
        "or add ckpt_path=last to resume that run."
    )
    assert (run_dir / "checkpoints" / "last.ckpt").read_bytes() == b"another run's weights"


def test_cli_fresh_run_in_a_used_folder_touches_nothing(tmp_path: Path) -> None:
    run = tmp_path / "used"
    (run / "checkpoints").mkdir(parents=True)
    (run / ".hydra").mkdir()
    (run / "checkpoints" / "last.ckpt").write_bytes(b"weights")
    (run / ".hydra" / "config.yaml").write_text("the other run's config")
    result = run_script("train", [*TINY, f"hydra.run.dir={run}"], cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == (
        f"Error: hydra.run.dir={run} already holds checkpoints (last.ckpt); start a fresh run in a new folder, "
        "or add ckpt_path=last to resume that run."
    )
    assert (run / ".hydra" / "config.yaml").read_text() == "the other run's config"
    assert sorted(p.name for p in run.iterdir()) == [".hydra", "checkpoints"]


def last_epoch(checkpoint: Path) -> int | None:
    """The epoch of a complete last.ckpt, or None while it is missing or still being written."""
    try:
        return torch.load(checkpoint, map_location="cpu", weights_only=True)["epoch"]
    except Exception:
        return None


@pytest.mark.slow
def test_run_killed_mid_training_resumes_to_the_same_metrics(tmp_path: Path) -> None:
    # Epochs long enough (128 steps) that the kill lands between two checkpoints.
    args = [*TINY, "data.num_train=2048", "data.batch_size=16", "trainer.max_epochs=3", "extras.print_config=false"]
    killed = tmp_path / "killed"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        [str(BIN / "trainlab-train"), *args, f"hydra.run.dir={killed}"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 240
    epoch = None
    while epoch is None and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
        epoch = last_epoch(killed / "checkpoints" / "last.ckpt")
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    assert process.returncode == -signal.SIGKILL, "the run ended before it could be killed"
    assert epoch is not None and epoch < 2, "no checkpoint to resume from before the run ended"

    resumed = run_script("train", [*args, "ckpt_path=last", f"hydra.run.dir={killed}"], cwd=tmp_path, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "exists and is not empty" not in resumed.stdout + resumed.stderr  # resuming there is what was asked
    unbroken = run_script("train", [*args, f"hydra.run.dir={tmp_path / 'unbroken'}"], cwd=tmp_path, timeout=600)
    assert unbroken.returncode == 0, unbroken.stderr[-3000:]

    resumed_scalars = read_scalars(killed)
    unbroken_scalars = read_scalars(tmp_path / "unbroken")
    for tag in FINAL:
        assert resumed_scalars[tag][-1] == unbroken_scalars[tag][-1], tag
    assert resumed_scalars["val/acc"] == unbroken_scalars["val/acc"]  # one point per epoch, no duplicates


def test_a_resumed_runs_event_file_sorts_after_the_earlier_ones(tmp_path: Path) -> None:
    """TensorBoard reads event files in name order; a resumed run's file must come last even when it
    is opened in the same second as one with a higher process counter ("...11" sorts before "...8")."""
    from torch.utils.tensorboard import SummaryWriter

    earlier = f"events.out.tfevents.{int(time.time()):010d}.host.1.99"
    (tmp_path / earlier).write_bytes(b"")
    continue_event_files(tmp_path)
    SummaryWriter(str(tmp_path)).close()
    names = sorted(path.name for path in tmp_path.glob("events.out.tfevents.*"))
    assert len(names) == 2 and names[0] == earlier
