"""The two venvs `make` builds: .venv, which every run starts in, holds none of the optional packages, and
.venv-extras adds them on top of it without a second copy of what .venv has."""

import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from runkit.optional import EXTRA_OF
from runkit.runs.commands import program, script_folders
from tests.runkit.helpers.process import ROOT

TRAINING_VENV = ROOT / ".venv"
EXTRAS_VENV = ROOT / ".venv-extras"

# What a run imports before its first batch; none of it may pull in an optional package.
STARTUP = "import sys, lightning.pytorch, torchmetrics, runkit.train, runkit.training; print(*sorted(sys.modules))"


def python_of(venv: Path) -> Path:
    python = venv / "bin" / "python"
    if not python.is_file():
        pytest.skip(f"{venv.name} is not built here; `make test` builds it")
    return python


@pytest.mark.slow  # imports Lightning in a process of its own (~5 s)
def test_the_training_venv_holds_no_optional_package() -> None:
    """torchmetrics imports scipy and matplotlib whenever they are installed (about 1 s); .venv must not have them."""
    python = python_of(TRAINING_VENV)
    check = f"{STARTUP}; import importlib.util as u; print(*[p for p in {list(EXTRA_OF)!r} if u.find_spec(p)])"
    imported, installed = subprocess.run(
        [python, "-c", check], capture_output=True, text=True, check=True
    ).stdout.splitlines()
    assert installed.split() == []
    assert not [module for module in imported.split() if module.split(".")[0] in {*EXTRA_OF, "pandas", "sklearn"}]


@pytest.mark.extras
def test_the_extras_venv_adds_the_optional_packages_over_the_training_venv() -> None:
    python = python_of(EXTRAS_VENV)
    where = f"import importlib.util as u; print(*[u.find_spec(p).origin for p in {['torch', *EXTRA_OF]!r}])"
    torch, *optional = subprocess.run([python, "-c", where], capture_output=True, text=True, check=True).stdout.split()
    assert Path(torch).is_relative_to(TRAINING_VENV)  # one copy of torch, .venv's
    assert all(Path(origin).is_relative_to(EXTRAS_VENV) for origin in optional), optional


@pytest.mark.extras
def test_a_program_only_the_training_venv_has_is_found_from_the_extras_venv() -> None:
    """The run's closing `tensorboard --logdir` command names a program that exists, from either venv."""
    assert script_folders() == [EXTRAS_VENV / "bin", TRAINING_VENV / "bin"]
    printed = shlex.split(program("tensorboard"))[0]  # its path, or its name where the PATH finds that one
    assert Path(shutil.which(printed) or printed) == TRAINING_VENV / "bin" / "tensorboard"
