"""Two processes, one run folder: a job never runs in two processes at once. The second waits, saying so in
one line, then decides from the job's status (a finished job is skipped); a lock left by a dead process is no
obstacle. Real processes, real locks."""

import signal
import subprocess
import sys
from pathlib import Path

import pytest

from runkit.runs.job_lock import LOCK_FILE
from runkit.runs.reading import find_run_folders
from runkit.runs.status import read_status
from tests.runkit.helpers.process import BIN, run_script
from tests.runkit.helpers.runs import TINY_MLP
from tests.runkit.test_interruptions import LONG_EPOCHS, val_steps

HOLDER = """
import sys
from pathlib import Path
from runkit.runs.job_lock import hold_run_folder
hold_run_folder(Path(sys.argv[1]))
print("held", flush=True)
sys.stdin.read()  # holds the folder until the test closes this pipe
"""
WAITING = "Waiting for"


def hold(folder: Path) -> subprocess.Popen:
    """Another process holding `folder`, as a running job does, until its stdin closes."""
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(folder)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert holder.stdout.readline().strip() == "held"
    return holder


def start_train(args: list[str], cwd: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [str(BIN / "trainlab-train"), *args], cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


def read_until(process: subprocess.Popen, text: str) -> list[str]:
    """The process's output lines up to the first holding `text` (all of them if none does)."""
    lines = []
    for line in process.stdout:
        lines.append(line)
        if text in line:
            break
    return lines


def test_a_sweep_waits_for_a_job_another_process_runs(tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"
    holder = hold(sweep / "000_seed-1")
    process = start_train(["-m", *TINY_MLP, "trainer.max_epochs=1", "seed=1,2", f"hydra.sweep.dir={sweep}"], tmp_path)
    seen = read_until(process, WAITING)
    assert WAITING in seen[-1] and "another process (pid" in seen[-1], "".join(seen)[-3000:]
    assert not (sweep / "000_seed-1" / "status.yaml").exists()  # it waits before touching the job

    holder.communicate()  # the other process ends, and its lock with it
    rest, _ = process.communicate(timeout=300)
    assert process.returncode == 0, rest[-3000:]
    assert [read_status(folder)["status"] for folder in find_run_folders(sweep)] == ["ok", "ok"]
    assert not list(sweep.glob("*/attempt_*"))
    assert not list(sweep.glob(f"*/{LOCK_FILE}"))  # let go of, and removed, as each job ended


@pytest.mark.slow
def test_a_lock_left_by_a_killed_process_is_taken_over_at_once(tmp_path: Path) -> None:
    run = tmp_path / "run"
    holder = hold(run)
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    assert (run / LOCK_FILE).exists()

    done = run_script("train", [*TINY_MLP, "trainer.max_epochs=1", f"hydra.run.dir={run}"], cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert WAITING not in done.stdout + done.stderr
    assert read_status(run)["status"] == "ok"
    assert not (run / LOCK_FILE).exists()


@pytest.mark.slow
def test_two_sweeps_into_one_folder_train_each_job_once(tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"
    args = ["-m", *LONG_EPOCHS, "seed=1,2", f"hydra.sweep.dir={sweep}"]
    first, second = start_train(args, tmp_path), start_train(args, tmp_path)  # both reach job 000 together
    outputs = [process.communicate(timeout=900)[0] for process in (first, second)]

    assert [process.returncode for process in (first, second)] == [0, 0], outputs[1][-3000:]
    folders = find_run_folders(sweep)
    assert len(folders) == 2 and all(read_status(folder)["status"] == "ok" for folder in folders)
    assert not list(sweep.glob("*/attempt_*")) and not list(sweep.glob("*/run_info_*.yaml"))
    for folder in folders:
        steps = val_steps(folder)
        assert len(steps) == 3 and steps == sorted(steps)  # one point per epoch: one process wrote them
    trained = "".join(outputs).count("Training; run folder")
    assert trained == 2  # each job trained once, by one of the two sweeps


@pytest.mark.slow
def test_a_second_run_into_a_running_runs_folder_waits_then_refuses_to_overwrite_it(tmp_path: Path) -> None:
    run = tmp_path / "run"
    first = start_train([*LONG_EPOCHS, f"hydra.run.dir={run}"], tmp_path)
    read_until(first, "Training; run folder")
    config_of_the_first = (run / ".hydra" / "config.yaml").read_text()
    second = run_script("train", [*LONG_EPOCHS, "seed=7", f"hydra.run.dir={run}"], cwd=tmp_path, timeout=900)
    first.communicate(timeout=900)

    assert first.returncode == 0 and read_status(run)["status"] == "ok"
    assert second.returncode == 2
    assert second.stderr.strip().splitlines()[-1].startswith("Error: ")  # the used folder, in one line
    assert (run / ".hydra" / "config.yaml").read_text() == config_of_the_first
