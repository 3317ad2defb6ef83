from pathlib import Path

import pytest


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    """A fresh run folder inside the test's temp dir."""
    return tmp_path / "logs" / "run"
