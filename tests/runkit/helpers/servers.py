"""Start a server through its make target (TensorBoard, MLflow) and read what it serves over HTTP."""

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.runkit.helpers.process import ROOT

STARTUP_LIMIT_S = 120  # servers start in seconds; the bound only keeps a broken server from hanging the suite


def get_json(url: str, body: dict | None = None) -> object | None:
    """The JSON at url (POSTing body, if given), or None while the server is not answering (yet)."""
    data = json.dumps(body).encode() if body is not None else None
    headers = {"Content-Type": "application/json"} if body is not None else {}
    try:
        with urllib.request.urlopen(urllib.request.Request(url, data=data, headers=headers), timeout=5) as response:
            return json.loads(response.read())
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return None


def serve(target: str, tmp_path: Path, **settings: str) -> tuple[subprocess.Popen, Path]:
    """`make <target>` in its own session, its output in a log file. BIN and EXTRAS_BIN: the environment
    running these tests (.venv for TensorBoard, .venv-extras for MLflow); -o: use the venvs as installed,
    never reinstall from the test."""
    log = tmp_path / f"{target}.log"
    bin_folder = Path(sys.executable).parent
    command = ["make", "-s", "-C", str(ROOT), "-o", ".venv/.installed", "-o", ".venv-extras/.installed", target]
    command += [f"BIN={bin_folder}", f"EXTRAS_BIN={bin_folder}"]
    command += [f"{key}={value}" for key, value in settings.items()]
    with open(log, "w") as output:
        server = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT, start_new_session=True)
    return server, log


def wait_for(server: subprocess.Popen, log: Path, serving: re.Pattern, path: str, body: dict | None = None) -> Any:
    """What the server answers at path, once it says which port the system gave it and the answer is not empty."""
    deadline = time.monotonic() + STARTUP_LIMIT_S
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"The server exited with code {server.returncode}:\n{log.read_text()[-2000:]}")
        found = serving.search(log.read_text())
        answer = get_json(f"http://127.0.0.1:{found[1]}/{path}", body) if found else None
        if answer:  # empty: the server is up but has not loaded the runs yet
            return answer
        time.sleep(0.5)
    pytest.fail(f"The server did not answer /{path} within {STARTUP_LIMIT_S} s:\n{log.read_text()[-2000:]}")


def stop(server: subprocess.Popen) -> None:
    """End make and the server it started (and the server's own workers): they share the session started for them."""
    if server.poll() is None:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
