"""The start-up floor: `import lightning.pytorch` in a venv holding only trainlab's required dependencies.

The venv `make install` makes holds more (the dev tools, MLflow, W&B, matplotlib): whatever of it a run imports
at start is a cost every user pays, and comparing `trainlab-train debug=fdr` there with this floor shows it. The
venv is made once under benchmarks/minimal-venv/ (pip takes torch and torchvision from the machine's local
index, as `make install` does) and made again when trainlab's required dependencies change.
"""

import subprocess
import time
import venv
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MINIMAL_VENV = ROOT / "benchmarks" / "minimal-venv"
STAMP = MINIMAL_VENV / "trainlab-requirements.txt"  # what it was made with


def required_dependencies() -> list[str]:
    """trainlab's required dependencies as installed trainlab declares them (pyproject.toml), without extras."""
    return [requirement for requirement in metadata.requires("trainlab") or [] if "extra ==" not in requirement]


def minimal_python() -> Path:
    """The minimal venv's interpreter, the venv made first where it is missing or out of date (minutes)."""
    requirements = "\n".join(required_dependencies()) + "\n"
    python = MINIMAL_VENV / "bin" / "python"
    if python.is_file() and STAMP.is_file() and STAMP.read_text() == requirements:
        return python
    print(f"Making {MINIMAL_VENV} with trainlab's required dependencies only (once; a few minutes) ...", flush=True)
    venv.create(MINIMAL_VENV, clear=True, with_pip=True)
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", *required_dependencies()], check=True)
    STAMP.write_text(requirements)
    return python


def import_lightning_s(python: Path) -> float:
    """Seconds of one whole `python -c "import lightning.pytorch"` process."""
    start = time.perf_counter()
    subprocess.run([str(python), "-c", "import lightning.pytorch"], check=True, capture_output=True)
    return time.perf_counter() - start


if __name__ == "__main__":  # make the venv ahead of a benchmark: python scripts/bench/minimal_venv.py
    print(minimal_python())
