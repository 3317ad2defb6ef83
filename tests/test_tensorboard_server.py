"""`make tensorboard` serves a run's curves: read them back through TensorBoard's HTTP API, as the browser does."""

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from tests.helpers.config import compose_config
from tests.helpers.process import ROOT
from trainlab.run_folder import read_scalars
from trainlab.training import train

SMALL = [
    "data.num_train=192",
    "data.num_val=64",
    "data.num_test=32",
    "data.batch_size=32",
    "trainer.max_epochs=3",
    "callbacks=none",
]
STARTUP_LIMIT_S = 120  # TensorBoard starts in seconds; the bound only keeps a broken server from hanging the suite


SERVING = re.compile(r"http://127\.0\.0\.1:(\d+)/")


def get_json(url: str) -> object | None:
    """The JSON at url, or None while the server is not answering (yet)."""
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return json.loads(response.read())
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return None


def wait_for_scalars(server: subprocess.Popen, query: str, log: Path) -> list[list[float]]:
    """The scalars TensorBoard serves, once it says which port the system gave it and has loaded the run."""
    deadline = time.monotonic() + STARTUP_LIMIT_S
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"TensorBoard exited with code {server.returncode}:\n{log.read_text()[-2000:]}")
        serving = SERVING.search(log.read_text())
        points = get_json(f"{serving[0]}data/plugin/scalars/scalars?{query}") if serving else None
        if points:  # an empty list: the server is up but has not loaded the run yet
            return points
        time.sleep(0.5)
    url = f"/data/plugin/scalars/scalars?{query}"
    pytest.fail(f"TensorBoard did not serve {url} within {STARTUP_LIMIT_S} s:\n{log.read_text()[-2000:]}")


def stop(server: subprocess.Popen) -> None:
    """End make, TensorBoard and its data server: they share the session started for them."""
    if server.poll() is None:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()


def test_make_tensorboard_serves_the_runs_val_acc_curve(tmp_path: Path) -> None:
    log_dir = tmp_path / "logs"
    run_dir = log_dir / "train" / "runs" / "first"
    train(compose_config("train", SMALL, run_dir))
    expected = read_scalars(run_dir / "tensorboard")["val/acc"]
    assert len(expected) == 3

    query = urllib.parse.urlencode({"run": "train/runs/first/tensorboard", "tag": "val/acc"})
    log = tmp_path / "tensorboard.log"
    # BIN: the environment running these tests; -o: use it as installed, never reinstall from the test.
    command = [
        "make",
        "-s",
        "-C",
        str(ROOT),
        "-o",
        ".venv/.installed",
        "tensorboard",
        f"BIN={Path(sys.executable).parent}",
        f"LOGDIR={log_dir}",
        "TB_HOST=127.0.0.1",
        "TB_PORT=0",  # the system picks a free port and TensorBoard prints it: no port can be taken in between
    ]
    with open(log, "w") as output:
        server = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        points = wait_for_scalars(server, query, log)
    finally:
        stop(server)
    # Each point is [wall_time, step, value]: the browser's curve is the event files' curve.
    assert [(step, value) for _, step, value in points] == expected
