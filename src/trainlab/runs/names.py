"""A run's name in its loggers (TensorBoard, MLflow, W&B): a sweep's job by the keys the sweep varies, a single
run by its folder. The name is also a folder name: short and safe."""

import hashlib
import re
from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from trainlab.process.mode import in_multirun

# Written into a sweep folder when the sweep starts: the keys whose values set its jobs apart, and the command
# as the user typed it (a job started by submitit or joblib has another command line of its own).
SWEEP_KEYS_FILE = "sweep_keys.yaml"

# A run's name in TensorBoard, MLflow and W&B is also a folder name: short, and only these characters.
UNSAFE_IN_NAME = re.compile(r"[^A-Za-z0-9._=,+@-]")

MAX_NAME_LENGTH = 80


def sweep_keys(config: DictConfig) -> list[str]:
    """The keys a multirun varies: command-line overrides in sweep syntax (`seed=1,2`, `range(...)`) and the
    search space of the sweeper (`hydra.sweeper.params`), in the order given."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    overrides = OverridesParser.create().parse_overrides(list(config.hydra.overrides.task))
    keys = [override.key_or_group for override in overrides if override.is_sweep_override()]
    keys += [str(key) for key in (config.hydra.sweeper.get("params") or {}) if key not in keys]
    return keys


def run_name(output_dir: str | Path) -> str:
    """A run's name for its loggers: a sweep job by what sets it apart (`optimizer=sgd,seed=2`), a single
    run by its folder (its start time)."""
    if not in_multirun():
        return Path(output_dir).name
    overrides = parse_overrides(list(HydraConfig.get().overrides.task))
    keys = sweep_varying_keys() or list(overrides)
    name = ",".join(f"{key}={short_value(overrides[key])}" for key in keys if key in overrides)
    return safe_name(name) if name else f"job{HydraConfig.get().job.num}"


def short_value(text: str) -> str:
    """A number as a legend shows it, to 4 significant digits (a search's 0.00025529246739698907 is 0.0002553)."""
    try:
        number = float(text)
    except ValueError:
        return text
    return f"{number:.4g}" if "." in text or "e" in text.lower() else text


def sweep_varying_keys() -> list[str]:
    """In a sweep's job, the keys the sweep varies (recorded when it started); empty outside a sweep."""
    if not in_multirun():
        return []
    keys_file = Path(HydraConfig.get().sweep.dir) / SWEEP_KEYS_FILE
    return [str(key) for key in OmegaConf.load(keys_file).varying] if keys_file.is_file() else []


def safe_name(name: str) -> str:
    """A name that is also a safe, short folder name: other characters become _, and a long name is cut
    and ends with a hash of the whole, so that two long names stay apart."""
    name = UNSAFE_IN_NAME.sub("_", name)
    if len(name) <= MAX_NAME_LENGTH:
        return name
    digest = hashlib.sha1(name.encode()).hexdigest()[:8]
    return f"{name[: MAX_NAME_LENGTH - 9]}_{digest}"


def parse_overrides(overrides: list[str]) -> dict[str, str]:
    """['+x=1', 'optimizer.lr=0.1'] -> {'x': '1', 'optimizer.lr': '0.1'}; deletions (~key) are kept as such."""
    parsed: dict[str, str] = {}
    for override in overrides:
        key, _, value = override.partition("=")
        parsed[key.lstrip("+")] = value
    return parsed
