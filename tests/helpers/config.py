"""Compose the real Hydra configs in-process, the way the console scripts do, with outputs in a temp folder."""

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, open_dict

from trainlab.config import CONFIG_DIR

# Keep test runs quiet and on the CPU; each test can override any of these.
QUIET = ["extras.print_config=false", "trainer.accelerator=cpu", "trainer.devices=1"]


@contextmanager
def hydra_context(config_dir: str | Path = CONFIG_DIR) -> Iterator[None]:
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(config_dir), version_base="1.3"):
        yield


def compose_config(
    name: str, overrides: Sequence[str], output_dir: Path, quiet: bool = True, config_dir: str | Path = CONFIG_DIR
) -> DictConfig:
    """Compose configs/<name>.yaml with overrides, as `trainlab-<name>` would, writing into output_dir.

    config_dir: another configs folder, e.g. a copy with extra files, so the repository stays untouched.
    """
    extra = QUIET if quiet else []
    with hydra_context(config_dir):
        cfg = compose(name, overrides=[*extra, *overrides], return_hydra_config=True)
    with open_dict(cfg):
        cfg.paths.output_dir = str(output_dir)
        cfg.paths.log_dir = str(output_dir.parent)
        cfg.hydra.runtime.output_dir = str(output_dir)
    # Entry points read the chosen options (e.g. model=cnn) from Hydra's runtime config.
    HydraConfig.instance().set_config(cfg)
    with open_dict(cfg):
        del cfg["hydra"]  # a real run's config has no hydra section either
    output_dir.mkdir(parents=True, exist_ok=True)
    return cfg


def group_options(group: str) -> list[str]:
    """Every option of a config group, from the files in configs/<group>/."""
    return sorted(path.stem for path in (Path(CONFIG_DIR) / group).glob("*.yaml"))
