"""Compose a run's config in-process, as the console scripts do, for code that runs trainlab without its command
line: notebooks, benchmarks and the tests."""

import copy
from collections.abc import Sequence
from pathlib import Path

from hydra import compose as hydra_compose
from hydra import initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import DictConfig, open_dict

from runkit.compat import set_hydra_config
from runkit.config.validate import validate_config

# The template is used from a clone (editable install), so the configs sit at the repository root.
CONFIG_DIR = str(Path(__file__).resolve().parents[3] / "configs")


def compose(
    name: str, overrides: Sequence[str], output_dir: Path, config_dir: str | Path = CONFIG_DIR, validate: bool = True
) -> DictConfig:
    """configs/<name>.yaml with the overrides, writing into output_dir (its parent stands for logs/), validated as
    the console scripts validate it: a mistake raises its one-line ConfigError here.

    `config_dir`: another configs folder, e.g. a copy with extra files. `validate=False` returns the config as
    composed, for code that checks it itself. Hydra's runtime config is set too, since runs read the chosen
    options (model=cnn, ...) from it.
    """
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(config_dir), version_base="1.3"):
        cfg = hydra_compose(name, overrides=list(overrides), return_hydra_config=True)
    with open_dict(cfg):
        cfg.paths.output_dir = str(output_dir)
        cfg.paths.log_dir = str(output_dir.parent)
        cfg.hydra.runtime.output_dir = str(output_dir)
    set_hydra_config(cfg)
    # A real run's config has no hydra section either. As in Hydra's own run_job, the run gets a copy without it,
    # so that HydraConfig's interpolations (run.dir reads hydra.overrides.task) still resolve against the whole.
    cfg = copy.deepcopy(cfg)
    with open_dict(cfg):
        del cfg["hydra"]
    if validate:
        validate_config(cfg)
    output_dir.mkdir(parents=True, exist_ok=True)
    return cfg
