"""A run's folder and its name in its loggers (TensorBoard, MLflow, W&B), which agree: a single run's folder is
its start time then what sets it apart (`2026-12-02_16-16-22_894932_mnist_cnn_optimizer.lr-0.01`), and it is
named by its folder; a sweep's job folder is its number then the values the sweep varies (`003_seed-2`), and it
is named by those values (`seed=2`). A name is also a folder name: short and safe."""

import hashlib
import re
from collections.abc import Sequence
from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from runkit.process.mode import in_multirun

# Written into a sweep folder when the sweep starts: the keys whose values set its jobs apart, and the command
# as the user typed it (a job started by submitit or joblib has another command line of its own).
SWEEP_KEYS_FILE = "sweep_keys.yaml"

# A run's name in TensorBoard, MLflow and W&B is also a folder name: short, and only these characters.
UNSAFE_IN_NAME = re.compile(r"[^A-Za-z0-9._=,+@-]")

MAX_NAME_LENGTH = 80

# A folder's path is typed back on the command line (`hydra.run.dir=...`, `ckpt_path=.../last.ckpt`), where Hydra
# reads = and , as syntax: a folder spells the name's `key=value,key=value` as `key-value_key-value`.
FOLDER_SPELLING = str.maketrans({"=": "-", ",": "_"})

# Job folders begin with the job number padded to this width, so that they sort by number (an Optuna search
# of more than 999 trials gets wider numbers from the 1000th on: trainlab-summarize still sorts them by number).
JOB_NUMBER_WIDTH = 3

# Overrides that say where a run's files go or how its process runs, not what it trains, stay out of its folder's
# name: paths.*, hydra.*, this machine's local config, extras.* (printing, threads), task_name (it names the
# folder above) and ckpt_path (a long file path; the run records it in run_info.yaml).
NOT_IN_NAME = ("paths", "hydra", "local", "extras", "task_name", "ckpt_path")


def sweep_keys(config: DictConfig) -> list[str]:
    """The keys a multirun varies: command-line overrides in sweep syntax (`seed=1,2`, `range(...)`) and the
    sweeps of the sweeper's params (`hydra.sweeper.params`: the grid, or Optuna's search space), in the order
    given."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parser = OverridesParser.create()
    params = [f"{key}={value}" for key, value in (config.hydra.sweeper.get("params") or {}).items()]
    overrides = parser.parse_overrides([*config.hydra.overrides.task, *params])
    keys = [override.key_or_group for override in overrides if override.is_sweep_override()]
    return list(dict.fromkeys(keys))  # a fixed parameter (data.num_folds: 5) sets no job apart


def run_folder_name(stamp: str, overrides: Sequence[str]) -> str:
    """A single run's folder: its start time (which sorts runs and keeps them apart), then what sets it apart."""
    apart = what_sets_apart(overrides)
    return safe_name(f"{stamp}_{apart}" if apart else stamp).translate(FOLDER_SPELLING)


def job_folder_name(number: int, overrides: Sequence[str], sweep_dir: str | Path) -> str:
    """A sweep job's folder: its number, then its run name (what the sweep varies) spelled for a folder. Built from
    the job's own config alone, so that every launcher, and the same sweep run again into its folder, gives a job
    the same one."""
    name = job_name(overrides, varying_keys(sweep_dir)).translate(FOLDER_SPELLING)
    padded = f"{int(number):0{JOB_NUMBER_WIDTH}d}"
    return f"{padded}_{name}" if name else padded


def run_name(output_dir: str | Path) -> str:
    """A run's name for its loggers: a sweep job by what sets it apart (`optimizer=sgd,seed=2`; its folder is
    `<number>_optimizer-sgd_seed-2`), a single run by its folder."""
    if not in_multirun():
        return Path(output_dir).name
    hydra = HydraConfig.get()
    return job_name(list(hydra.overrides.task), varying_keys(hydra.sweep.dir)) or f"job{hydra.job.num}"


def job_name(overrides: Sequence[str], varying: Sequence[str]) -> str:
    """A sweep job's values of the keys its sweep varies; when it varies none, what sets the job apart."""
    if not varying:
        return safe_name(what_sets_apart(overrides))
    parsed = parse_overrides(overrides)
    return safe_name(",".join(show_override(key, parsed[key]) for key in varying if key in parsed))


def what_sets_apart(overrides: Sequence[str]) -> str:
    """From a run's command-line overrides, the experiment's name then the others (`mnist_cnn_optimizer.lr=0.01`),
    leaving out those that only say where files go or how the process runs (NOT_IN_NAME)."""
    parsed = parse_overrides(overrides)
    experiment = parsed.pop("experiment", "")
    shown = [
        show_override(key, value) for key, value in parsed.items() if key.lstrip("~").split(".")[0] not in NOT_IN_NAME
    ]
    return "_".join(part for part in (experiment, ",".join(shown)) if part)


def show_override(key: str, value: str) -> str:
    """`optimizer.lr=0.0002553`; a deletion (`~callbacks.early_stopping`) as it was typed."""
    return key if key.startswith("~") and not value else f"{key}={short_value(value)}"


def short_value(text: str) -> str:
    """A number as a legend shows it, to 4 significant digits (a search's 0.00025529246739698907 is 0.0002553)."""
    try:
        number = float(text)
    except ValueError:
        return text
    return f"{number:.4g}" if "." in text or "e" in text.lower() else text


def sweep_varying_keys() -> list[str]:
    """In a sweep's job, the keys the sweep varies (recorded when it started); empty outside a sweep."""
    return varying_keys(HydraConfig.get().sweep.dir) if in_multirun() else []


def varying_keys(sweep_dir: str | Path) -> list[str]:
    """The keys the sweep in `sweep_dir` varies, as recorded when it started (empty when nothing is recorded)."""
    keys_file = Path(sweep_dir) / SWEEP_KEYS_FILE
    return [str(key) for key in OmegaConf.load(keys_file).varying] if keys_file.is_file() else []


def safe_name(name: str) -> str:
    """A name that is also a safe, short folder name: other characters become _, and a long name is cut
    and ends with a hash of the whole, so that two long names stay apart."""
    name = UNSAFE_IN_NAME.sub("_", name)
    if len(name) <= MAX_NAME_LENGTH:
        return name
    digest = hashlib.sha1(name.encode()).hexdigest()[:8]
    return f"{name[: MAX_NAME_LENGTH - 9]}_{digest}"


def parse_overrides(overrides: Sequence[str]) -> dict[str, str]:
    """['+x=1', 'optimizer.lr=0.1'] -> {'x': '1', 'optimizer.lr': '0.1'}; deletions (~key) are kept as such."""
    parsed: dict[str, str] = {}
    for override in overrides:
        key, _, value = override.partition("=")
        parsed[key.lstrip("+")] = value
    return parsed
