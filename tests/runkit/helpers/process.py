"""Run the installed console scripts in real subprocesses."""

import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

BIN = Path(sys.executable).parent
ROOT = Path(__file__).resolve().parents[3]


def run_script(
    name: str, args: Sequence[str], cwd: Path, timeout: float = 300, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    """Run `trainlab-<name> args...` from cwd and capture its output; `env` adds to the environment."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "HYDRA_FULL_ERROR": "0", **(env or {})}
    return subprocess.run(
        [str(BIN / f"trainlab-{name}"), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def git_reads(repo: Path = ROOT) -> bool:
    """Whether git works in `repo`: git installed, a .git there (not an unpacked archive), and the folder owned by
    this user or marked safe (git refuses another user's repository: root in a container on a mounted checkout)."""
    try:
        return subprocess.run(["git", "rev-parse", "--git-dir"], cwd=repo, capture_output=True).returncode == 0
    except OSError:
        return False


GIT_SKIP_REASON = "git cannot read the repository here (no git, no .git, or a folder another user owns)"
