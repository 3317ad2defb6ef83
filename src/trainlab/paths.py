"""Where the repository's configs live."""

from pathlib import Path

# The template is used from a clone (editable install), so the configs sit at the repository root.
CONFIG_DIR = str(Path(__file__).resolve().parents[2] / "configs")
