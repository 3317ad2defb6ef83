"""A closed terminal (or a dropped ssh session) stops a run as Ctrl-C does: SIGHUP is recorded as
`interrupted` with the command that resumes it; a run started with `nohup` keeps training."""

import fcntl
import os
import pty
import shlex
import signal
import subprocess
import termios
import threading
from pathlib import Path

import pytest

from runkit.runs.status import read_status
from tests.runkit.helpers.process import BIN
from tests.runkit.test_interruptions import LONG_EPOCHS, first_checkpoint_epoch, val_steps, wait_for_checkpoint


def drain(master: int) -> None:
    """Read the terminal's output until it closes, as a terminal window does, so the run never blocks on it."""
    try:
        while os.read(master, 4096):
            pass
    except OSError:  # the terminal was closed
        pass


def start_in_a_terminal(args: list[str], cwd: Path) -> tuple[subprocess.Popen, int]:
    """`trainlab-train args` in a session of its own whose controlling terminal is a new pseudo-terminal."""
    master, follower = pty.openpty()

    def take_the_terminal() -> None:
        os.setsid()
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)

    process = subprocess.Popen(
        [str(BIN / "trainlab-train"), *args],
        cwd=cwd,
        stdin=follower,
        stdout=follower,
        stderr=follower,
        preexec_fn=take_the_terminal,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    os.close(follower)
    threading.Thread(target=drain, args=(master,), daemon=True).start()
    return process, master


@pytest.mark.slow
def test_closing_the_terminal_records_the_run_as_interrupted_and_it_resumes(tmp_path: Path) -> None:
    run = tmp_path / "run"
    process, master = start_in_a_terminal([*LONG_EPOCHS, f"hydra.run.dir={run}"], tmp_path)
    wait_for_checkpoint(process, run / "checkpoints" / "last.ckpt")
    os.close(master)  # the terminal closes: the kernel sends SIGHUP to the session's leader, the run
    process.wait(timeout=120)

    assert process.returncode == 128 + signal.SIGHUP
    status = read_status(run)
    assert (status["status"], status["signal"]) == ("interrupted", "SIGHUP")
    assert first_checkpoint_epoch(run / "checkpoints" / "last.ckpt") is not None
    resumed = subprocess.run(shlex.split(status["resume"]), cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert read_status(run)["status"] == "ok"
    steps = val_steps(run)
    assert len(steps) == 3 and steps == sorted(steps)


@pytest.mark.slow
def test_a_run_started_with_nohup_keeps_training_after_a_hang_up(tmp_path: Path) -> None:
    run = tmp_path / "run"
    process = subprocess.Popen(
        ["nohup", str(BIN / "trainlab-train"), *LONG_EPOCHS, f"hydra.run.dir={run}"],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    wait_for_checkpoint(process, run / "checkpoints" / "last.ckpt")
    os.killpg(process.pid, signal.SIGHUP)
    _, stderr = process.communicate(timeout=600)

    assert process.returncode == 0, stderr[-3000:]
    assert read_status(run)["status"] == "ok"
