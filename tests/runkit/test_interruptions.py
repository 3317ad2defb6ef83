"""Ctrl-C and SIGTERM stop a run cleanly: status interrupted, the command that resumes it, exit 130 / 143.

Real subprocesses and real signals, sent once the run has written its first last.ckpt.
"""

import os
import shlex
import signal
import subprocess
import time
from pathlib import Path

import pytest
import torch

from runkit.process.interruption import RunInterrupted, interruption_behind
from runkit.runs.ending import recording_how_it_ends
from runkit.runs.reading import read_scalars
from runkit.runs.status import read_status
from tests.runkit.helpers.config import compose_config
from tests.runkit.helpers.process import BIN, ROOT, run_script
from tests.runkit.helpers.runs import TINY_MLP

# Epochs of 128 steps: long enough that the signal lands between two checkpoints.
LONG_EPOCHS = [
    *TINY_MLP,
    "trainer.deterministic=true",
    "data.num_train=2048",
    "data.batch_size=16",
    "trainer.max_epochs=3",
]


def first_checkpoint_epoch(checkpoint: Path) -> int | None:
    """The epoch of a complete last.ckpt, or None while it is missing."""
    try:
        return torch.load(checkpoint, map_location="cpu", weights_only=True)["epoch"]
    except Exception:
        return None


def start_and_signal(args: list[str], checkpoint: Path, signum: int, cwd: Path) -> subprocess.Popen:
    """Start `trainlab-train args`, send `signum` once `checkpoint` exists, and wait for the process to end."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        [str(BIN / "trainlab-train"), *args], cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    wait_for_checkpoint(process, checkpoint)
    process.send_signal(signum)
    process.wait(timeout=120)
    return process


def wait_for_checkpoint(process: subprocess.Popen, checkpoint: Path) -> None:
    """Wait until the running `process` has written a whole `checkpoint`, so that a signal lands mid-run."""
    deadline = time.monotonic() + 240
    while first_checkpoint_epoch(checkpoint) is None and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    assert process.poll() is None, "the run ended before the signal could be sent"


def val_steps(run: Path) -> list[int]:
    return [step for step, _ in read_scalars(run)["val/acc"]]


@pytest.mark.slow
@pytest.mark.parametrize(("signum", "exit_code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_stops_the_run_and_its_status_says_how_to_resume(signum: int, exit_code: int, tmp_path: Path) -> None:
    run = tmp_path / "run"
    process = start_and_signal(
        [*LONG_EPOCHS, f"hydra.run.dir={run}"], run / "checkpoints" / "last.ckpt", signum, tmp_path
    )
    assert process.returncode == exit_code, process.stderr.read()[-3000:]
    status = read_status(run)
    assert (status["status"], status["signal"]) == ("interrupted", signal.Signals(signum).name)
    resume = shlex.split(status["resume"])
    assert resume[-2:] == ["ckpt_path=last", f"hydra.run.dir={run}"]
    assert first_checkpoint_epoch(run / "checkpoints" / "last.ckpt") is not None  # whole and loadable

    resumed = subprocess.run(resume, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert read_status(run)["status"] == "ok"
    steps = val_steps(run)
    assert len(steps) == 3 and steps == sorted(steps)  # one point per epoch, in order, none twice


@pytest.mark.slow
def test_an_interrupted_sweep_run_again_resumes_where_it_stopped(tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"
    args = ["-m", *LONG_EPOCHS, "seed=1,2", f"hydra.sweep.dir={sweep}"]
    # Job folders: the job number, then what the sweep varies; a sweep run again finds each job in its own.
    first, second = sweep / "000_seed-1", sweep / "001_seed-2"
    process = start_and_signal(args, first / "checkpoints" / "last.ckpt", signal.SIGINT, tmp_path)
    assert process.returncode == 130, process.stderr.read()[-3000:]
    assert read_status(first)["status"] == "interrupted"
    assert not second.exists()  # Ctrl-C stops the whole sweep

    rerun = subprocess.run(shlex.split(read_status(first)["resume"]), cwd=tmp_path, capture_output=True, text=True)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert sorted(path.name for path in sweep.iterdir() if path.is_dir()) == [first.name, second.name]
    for job in (first, second):
        assert read_status(job)["status"] == "ok"
        assert len(val_steps(job)) == 3


@pytest.mark.slow  # three sweeps: about 20 s
def test_a_sweep_run_again_skips_finished_jobs_and_reruns_failed_ones(tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"
    # optimizer.lr=-1 fails config validation inside its job: a job that fails every time.
    args = [
        "-m",
        *TINY_MLP,
        "optimizer=sgd",
        "optimizer.lr=0.05,-1",
        "trainer.max_epochs=2",
        f"hydra.sweep.dir={sweep}",
    ]
    assert run_script("train", args, cwd=tmp_path).returncode == 0
    finished, failing = sweep / "000_optimizer.lr-0.05", sweep / "001_optimizer.lr--1"
    finished_files = sorted(path.name for path in finished.glob("events.out.tfevents.*"))

    again = run_script("train", args, cwd=tmp_path)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "This job finished in an earlier run of the sweep (status ok); skipped." in again.stdout + again.stderr
    assert sorted(path.name for path in finished.glob("events.out.tfevents.*")) == finished_files
    assert read_status(finished)["status"] == "ok"
    assert read_status(failing)["status"] == "failed"
    assert read_status(failing / "attempt_1")["status"] == "failed"  # the first attempt, kept aside

    # Another sweep into the same folder reuses the job numbers, and its job 0 the same folder name (0.050001 is
    # named 0.05): a job with other overrides runs anew there, and the finished job's files are kept aside.
    other_sweep = [*(arg for arg in args if not arg.startswith("optimizer.lr=")), "optimizer.lr=0.050001,0.1"]
    other = run_script("train", other_sweep, cwd=tmp_path)
    assert other.returncode == 0, other.stderr[-3000:]
    assert "skipped" not in other.stdout + other.stderr
    assert read_status(finished)["overrides"][-1] == "optimizer.lr=0.050001"
    assert read_status(finished / "attempt_1")["status"] == "ok"  # the finished job of the first sweep, kept
    # with its curves: the folder's own event files are the new job's alone, one point an epoch.
    assert sorted(path.name for path in (finished / "attempt_1").glob("events.out.tfevents.*")) == finished_files
    assert len(read_scalars(finished)["val/acc"]) == 2
    assert read_status(sweep / "001_optimizer.lr-0.1")["status"] == "ok"  # other values: a folder of its own


def test_a_stop_that_surfaces_as_a_librarys_clean_up_error_is_recorded_as_interrupted(run_dir: Path) -> None:
    """SLURM's warning landing inside OmegaConf's clean-up, while the model is built, came out as OmegaConf's
    AttributeError; the run was recorded as failed and was not resumed."""
    cfg = compose_config("train", TINY_MLP, run_dir)
    with pytest.raises(RunInterrupted) as stopped, recording_how_it_ends(cfg):
        try:
            raise RunInterrupted(signal.SIGUSR2)  # as the signal handler raises it, anywhere
        finally:
            raise AttributeError("'NoneType' object has no attribute '_invalidate_flags_cache'")
    assert stopped.value.signal_name == "SIGUSR2"
    status = read_status(run_dir)
    assert (status["status"], status["signal"]) == ("interrupted", "SIGUSR2")
    assert interruption_behind(ValueError("unrelated")) is None


@pytest.mark.slow
def test_a_run_stopped_while_testing_resumes_to_its_test_and_ends_ok(tmp_path: Path) -> None:
    """Its fit had finished, so the resumed process fits nothing: its objective comes from the curves logged before."""
    run = tmp_path / "run"
    stop = "+callbacks.stop._target_=tests.runkit.helpers.faults.InterruptWhileTestingOnce"
    args = [*TINY_MLP, "trainer.max_epochs=2", stop, f"+callbacks.stop.done={tmp_path / 'sent'}"]
    stopped = run_script("train", [*args, f"hydra.run.dir={run}"], cwd=tmp_path, env={"PYTHONPATH": str(ROOT)})
    assert stopped.returncode == 143, stopped.stderr[-3000:]
    status = read_status(run)
    assert status["status"] == "interrupted"

    resumed = subprocess.run(
        shlex.split(status["resume"]),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    status = read_status(run)
    assert status["status"] == "ok" and status["value"] == pytest.approx(read_scalars(run)["val/loss"][-1][1])
    assert "test/acc" in status["metrics"]
