from pathlib import Path

import pytest

from runkit.optional import EXTRA_OF, is_installed

# The shared multirun is a session fixture: imported here, it runs once for all the engine's test modules.
from tests.runkit.helpers.sweeps import seed_sweep  # noqa: F401


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked extras need the optional packages, which .venv leaves out: `make test` runs them in
    .venv-extras. Run from a venv without them, they are skipped with that said, rather than failing."""
    missing = [package for package in EXTRA_OF if not is_installed(package)]
    if not missing:
        return
    skip = pytest.mark.skip(reason=f"needs {', '.join(missing)}: `make test` runs it in .venv-extras")
    for item in items:
        if item.get_closest_marker("extras"):
            item.add_marker(skip)


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    """A fresh run folder inside the test's temp dir."""
    return tmp_path / "logs" / "run"
