"""trainlab's optional packages, and what a run that needs a missing one tells the user.

`make install` leaves them out of .venv, because torchmetrics imports scipy and matplotlib at start-up
whenever they are installed: about a second more on every run. `make install-extras` makes .venv-extras,
which is .venv plus these packages.
"""

import importlib.util

# package -> the extra of pyproject.toml that installs it
EXTRA_OF = {"mlflow": "mlflow", "wandb": "wandb", "matplotlib": "images", "cmaes": "samplers", "scipy": "samplers"}


def is_installed(package: str) -> bool:
    return importlib.util.find_spec(package) is not None


def where_to_find(package: str, program: str = "trainlab-train") -> str:
    """The middle of a one-sentence error: '<what> needs the <package> package, ...; <choose another ...>.'"""
    return (
        f"the {package} package, which is not installed in this venv; run .venv-extras/bin/{program} instead "
        f"(`make install-extras` makes it), pip install -e '.[{EXTRA_OF[package]}]' here"
    )
