"""Build an object from its config section, with any refusal turned into one ConfigError line.

The one wrapper of Hydra's instantiate that trainlab uses: for a run's objects (building.py) and for the
Optuna search's sampler and pruner (search.py).
"""

import re
from collections.abc import Mapping
from typing import Any

from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from runkit.config.errors import ConfigError, missing_class_error, user_error_message


def build(section: str, cfg: DictConfig | Mapping[str, Any], **kwargs: Any) -> Any:
    """instantiate(cfg); a class that cannot be found, or that refuses its settings, is one ConfigError line."""
    try:
        return instantiate(cfg, **kwargs)
    except InstantiationException as error:
        raise refused_settings(section, cfg, error) from error


def refused_settings(section: str, cfg: DictConfig | Mapping[str, Any], error: BaseException) -> ConfigError:
    """One line: the section (the innermost one Hydra names), its class, its settings and the library's reason."""
    message = user_error_message(error)
    if message is not None:  # trainlab's own classes already say what is wrong and how to fix it
        return ConfigError(message)
    cfg = cfg if isinstance(cfg, DictConfig) else OmegaConf.create(dict(cfg))
    where = re.search(r"full_key: (\S+)", str(error))
    inner = OmegaConf.select(cfg, where[1].removeprefix(f"{section}.")) if where and where[1] != section else None
    if inner is not None:
        cfg, section = inner, where[1]
    target = cfg.get("_target_", section)
    cause = error.__cause__ if isinstance(error, InstantiationException) and error.__cause__ else error
    if isinstance(cause, ImportError) and str(error).startswith("Error locating target"):
        return missing_class_error(section, target)
    reason = (str(cause).strip().splitlines() or [""])[0]
    settings = ", ".join(
        f"{section}.{k}={v}" for k, v in cfg.items() if not str(k).startswith("_") and not isinstance(v, DictConfig)
    )
    return ConfigError(f"{section} ({target}) refused its settings {settings}: {type(cause).__name__}: {reason}")
