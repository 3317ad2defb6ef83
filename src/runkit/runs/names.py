"""A run's folder and its name in MLflow and W&B. A single run's folder is its start time then what sets it apart
(`2026-12-02_16-16-22_894932_mnist_cnn_optimizer.lr-0.01`), so that folders sort by time; a sweep's job folder is
its number then the values the sweep varies (`003_seed-2`). TensorBoard names a run by its folder. MLflow's and
W&B's tables show only a name's first 20-odd characters, so there a run is named by what sets it apart first and
its time last (`mnist_cnn_lr=0.01_2026-12-02_16-16-22`; a sweep's job `seed=2_2026-12-02_16-16-22#003`)."""

import hashlib
import re
from collections.abc import Mapping, Sequence
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

# In a logger's name, what sets the run apart is cut past this many characters, after a whole override, and
# ends with LOGGER_CUT_MARK; the start time and a job's number that follow keep names apart.
MAX_LOGGER_APART_LENGTH = 60
LOGGER_CUT_MARK = ",…"

# A run folder's start time as runkit.runs.resolvers writes it: to the second, then microseconds (dropped from a
# logger's name, which MLflow and W&B show beside the start time anyway), or the SLURM step of an srun's ranks.
FOLDER_STAMP = re.compile(r"(\d{4}-\d\d-\d\d_(?:\d\d-\d\d-\d\d|slurm-[0-9.]+))(_\d{6})?(?=_|$)")

# For a run with no override to tell it by, the recipe's choices name it in the loggers (`model=cnn,data=mnist`).
RECIPE_GROUPS = ("model", "data")

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
    """A run's name in MLflow and W&B: what sets it apart, then when it started. A sweep's job: the values its sweep
    varies, the sweep's start time and the job's number (`lr=0.01,seed=2_2026-12-02_16-16-22#003`: unique within
    the sweep); a single run: its experiment and overrides, or with none the recipe's choices, then its start time
    (`model=cnn,data=synthetic_images_2026-12-02_16-16-22`). Keys are shortened to their last part that no other key
    shares (`optimizer.lr` to `lr`; the params columns show them whole). A run in a folder named on the command line
    (`hydra.run.dir=logs/baseline`) is named by that folder."""
    folder = Path(output_dir).name
    if not HydraConfig.initialized():
        return folder
    hydra = HydraConfig.get()
    overrides = list(hydra.overrides.task)
    if in_multirun():
        apart = apart_in_logger(overrides, varying_keys(hydra.sweep.dir))
        when = f"{start_time(Path(hydra.sweep.dir).name)}#{int(hydra.job.num):0{JOB_NUMBER_WIDTH}d}"
    elif FOLDER_STAMP.match(folder):
        apart, when = apart_in_logger(overrides, []), start_time(folder)
    else:
        return folder
    apart = apart or recipe(hydra.runtime.choices)
    return f"{cut_at_key(apart, MAX_LOGGER_APART_LENGTH, LOGGER_CUT_MARK)}_{when}"


def start_time(folder: str) -> str:
    """A run or sweep folder's start time to the second; a folder named otherwise (`hydra.sweep.dir=...`) as is."""
    stamp = FOLDER_STAMP.match(folder)
    return stamp.group(1) if stamp else folder


def recipe(choices: Mapping[str, object]) -> str:
    """`model=cnn,data=synthetic_images`: the options chosen for RECIPE_GROUPS."""
    return ",".join(f"{group}={choices[group]}" for group in RECIPE_GROUPS if choices.get(group))


def job_name(overrides: Sequence[str], varying: Sequence[str]) -> str:
    """A sweep job's values of the keys its sweep varies; when it varies none, what sets the job apart."""
    if not varying:
        return safe_name(what_sets_apart(overrides))
    parsed = parse_overrides(overrides)
    return safe_name(",".join(show_override(key, parsed[key]) for key in varying if key in parsed))


def apart_in_logger(overrides: Sequence[str], varying: Sequence[str]) -> str:
    """`lr=0.01,seed=2`: a sweep job's values of the keys its sweep varies, in the sweep's order; when it varies
    none (or for a single run), what sets the run apart; each key by its shortest part no other key shares."""
    if varying:
        parsed = parse_overrides(overrides)
        experiment, named = "", {key: parsed[key] for key in varying if key in parsed}
    else:
        experiment, named = named_overrides(overrides)
    short = short_keys(list(named))
    return join_apart(experiment, [show_override(short[key], value) for key, value in named.items()])


def short_keys(keys: Sequence[str]) -> dict[str, str]:
    """Each key's last dotted parts, as few as keep it apart from the others: `optimizer.lr` -> `lr`, but
    `optimizer.lr` and `scheduler.lr` stay whole. A deletion keeps its ~ (`~callbacks.early_stopping`)."""
    bare = [key.lstrip("~") for key in keys]
    short = {}
    for key, name in zip(keys, bare, strict=True):
        parts = name.split(".")
        for count in range(1, len(parts) + 1):
            tail = ".".join(parts[-count:])
            if not any(other != name and (other == tail or other.endswith(f".{tail}")) for other in bare):
                break
        short[key] = key[: len(key) - len(name)] + tail
    return short


def what_sets_apart(overrides: Sequence[str]) -> str:
    """From a run's command-line overrides, the experiment's name then the others (`mnist_cnn_optimizer.lr=0.01`),
    leaving out those that only say where files go or how the process runs (NOT_IN_NAME)."""
    experiment, named = named_overrides(overrides)
    return join_apart(experiment, [show_override(key, value) for key, value in named.items()])


def named_overrides(overrides: Sequence[str]) -> tuple[str, dict[str, str]]:
    """The experiment chosen, and the other overrides but those NOT_IN_NAME, in the order given."""
    parsed = parse_overrides(overrides)
    experiment = parsed.pop("experiment", "")
    return experiment, {key: value for key, value in parsed.items() if key.lstrip("~").split(".")[0] not in NOT_IN_NAME}


def join_apart(experiment: str, shown: Sequence[str]) -> str:
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
    """A name that is also a safe, short folder name: other characters become _, and a long name is cut after
    its last whole override that fits and ends with a hash of the whole, so that two long names stay apart."""
    safe = UNSAFE_IN_NAME.sub("_", name)
    if len(safe) <= MAX_NAME_LENGTH:
        return safe
    digest = hashlib.sha1(safe.encode()).hexdigest()[:8]
    # Cut where the name as typed has its override boundaries: `[8,16]`'s brackets are gone from the safe name.
    return UNSAFE_IN_NAME.sub("_", cut_at_key(name, MAX_NAME_LENGTH, f"_{digest}"))


def cut_at_key(text: str, limit: int, mark: str) -> str:
    """`text` when it has at most `limit` characters; else its overrides that fit before `mark`, cut at the comma
    after the last whole one (`a=1,b=2,c=...` -> `a=1,b=2` + mark), so that no key or value is cut in half. A
    first override that alone is too long is cut where the room ends."""
    if len(text) <= limit:
        return text
    room = limit - len(mark)
    commas = [index for index in top_level_commas(text) if index <= room]
    return text[: commas[-1] if commas else room] + mark


def top_level_commas(text: str) -> list[int]:
    """Where `key=value,key=value` separates overrides: commas outside brackets and quotes (`channels=[8,16]`)."""
    depth, quote, found = 0, "", []
    for index, char in enumerate(text):
        if quote:
            quote = "" if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char in "[({":
            depth += 1
        elif char in "])}":
            depth = max(depth - 1, 0)
        elif char == "," and depth == 0:
            found.append(index)
    return found


def parse_overrides(overrides: Sequence[str]) -> dict[str, str]:
    """['+x=1', 'optimizer.lr=0.1'] -> {'x': '1', 'optimizer.lr': '0.1'}; deletions (~key) are kept as such."""
    parsed: dict[str, str] = {}
    for override in overrides:
        key, _, value = override.partition("=")
        parsed[key.lstrip("+")] = value
    return parsed
