"""A closed terminal (or a dropped ssh session) stops a run as Ctrl-C does: SIGHUP is recorded as
`interrupted` with the command that resumes it; a run started with `nohup` keeps training."""

import fcntl
import os
import pty
import select
import shlex
import signal
import subprocess
import termios
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from runkit.runs.status import read_status
from tests.runkit.helpers.process import BIN
from tests.runkit.test_interruptions import LONG_EPOCHS, first_checkpoint_epoch, val_steps, wait_for_checkpoint


def drain(master: int, closing: threading.Event) -> None:
    """Read the terminal's output until it is to close, as a terminal window does, so the run never blocks on it.
    It never blocks itself: a read in progress would keep the terminal open after os.close, and the hang-up late."""
    while not closing.is_set():
        if select.select([master], [], [], 0.1)[0]:
            try:
                if not os.read(master, 4096):
                    return
            except OSError:  # the run ended and closed its side
                return


def start_in_a_terminal(args: list[str], cwd: Path) -> tuple[subprocess.Popen, Callable[[], None]]:
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
    closing = threading.Event()
    reader = threading.Thread(target=drain, args=(master, closing), daemon=True)
    reader.start()

    def close_the_terminal() -> None:
        closing.set()
        reader.join()
        os.close(master)  # the last reference: the kernel hangs up the session's leader, the run

    return process, close_the_terminal


@pytest.mark.slow
def test_closing_the_terminal_records_the_run_as_interrupted_and_it_resumes(tmp_path: Path) -> None:
    run = tmp_path / "run"
    process, close_the_terminal = start_in_a_terminal([*LONG_EPOCHS, f"hydra.run.dir={run}"], tmp_path)
    wait_for_checkpoint(process, run / "checkpoints" / "last.ckpt")
    close_the_terminal()
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
