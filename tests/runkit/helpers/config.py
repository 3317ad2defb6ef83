"""Compose the real Hydra configs in-process, the way the console scripts do, with outputs in a temp folder."""

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from hydra import initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import DictConfig

from runkit.config import CONFIG_DIR, compose

# Keep test runs quiet and on the CPU; each test can override any of these.
QUIET = ["extras.print_config=false", "trainer.accelerator=cpu", "trainer.devices=1"]


@contextmanager
def hydra_context(config_dir: str | Path = CONFIG_DIR) -> Iterator[None]:
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(config_dir), version_base="1.3"):
        yield


def compose_config(
    name: str,
    overrides: Sequence[str],
    output_dir: Path,
    quiet: bool = True,
    config_dir: str | Path = CONFIG_DIR,
    validate: bool = True,
) -> DictConfig:
    """configs/<name>.yaml with overrides, as `trainlab-<name>` would compose and validate it, writing into
    output_dir; `validate=False` for a test of the validation itself."""
    return compose(name, [*(QUIET if quiet else []), *overrides], output_dir, config_dir, validate)


def group_options(group: str) -> list[str]:
    """Every option of a config group, from the files in configs/<group>/."""
    return sorted(path.stem for path in (Path(CONFIG_DIR) / group).glob("*.yaml"))
