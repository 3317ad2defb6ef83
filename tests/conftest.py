from pathlib import Path

import pytest

# The shared multirun (tests/helpers/sweeps.py) is a session fixture: registered here, it runs once for all modules.
pytest_plugins = ["tests.helpers.sweeps"]


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    """A fresh run folder inside the test's temp dir."""
    return tmp_path / "logs" / "run"
