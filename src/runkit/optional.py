"""trainlab's optional packages, and what a run that needs a missing one tells the user.

`make install` leaves them out of .venv, because torchmetrics imports scipy and matplotlib at start-up
whenever they are installed (about a second more on every run; docs/benchmarks.md), and MLflow brings both.
`make install-extras` makes .venv-extras, which is .venv plus these packages. What a newcomer needs works in
.venv alone: TensorBoard, the CSV log and trainlab-summarize's tables and figure (summary.svg, drawn without
matplotlib).
"""

import importlib.util

# package -> the extra of pyproject.toml that installs it
EXTRA_OF = {"mlflow": "mlflow", "wandb": "wandb", "matplotlib": "images", "cmaes": "samplers", "scipy": "samplers"}


def is_installed(package: str) -> bool:
    return importlib.util.find_spec(package) is not None


def where_to_find(package: str) -> str:
    """The middle of a one-sentence error, `<what> needs <this>, or <choose another ...>.`: two ways to get the
    package, the caller's third way last."""
    return (
        f"the {package} package, which is not installed in this venv; run .venv-extras/bin/trainlab-train instead "
        f"(`make install-extras` makes it), add it to this venv with pip install -e '.[{EXTRA_OF[package]}]'"
    )
