"""The run folder and its files: what a run writes there, how a folder is guarded and cleaned, and how it is read back.

A run folder (`logs/<task>/runs/<timestamp>/`, or one job of a multirun) holds `.hydra/` (Hydra's
saved config), `config_tree.log`, `run_info.yaml` (how to reproduce it), `status.yaml` (how it ended),
`checkpoints/` and `tensorboard/`. This module is the one place that knows those names.
"""

import csv
import hashlib
import math
import platform
import re
import shlex
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf, open_dict

from trainlab.config import ConfigError, user_error_message
from trainlab.process import COMMAND_AT_START, in_multirun, process_rank

# Set when this module is first imported, before Hydra creates the run folder.
PROCESS_START = time.time()
# What Hydra and the start of a run write before any training: the saved config and the log files.
START_FILES = {
    ".hydra/config.yaml",
    ".hydra/hydra.yaml",
    ".hydra/overrides.yaml",
    "config_tree.log",
    "run_info.yaml",
    "status.yaml",
}
STATUS_FILE = "status.yaml"
RUNNING, OK, FAILED, INTERRUPTED = "running", "ok", "failed", "interrupted"
PRUNED = "pruned"  # an Optuna trial stopped early by the search's pruner: not a failure, but not run to the end
RUN_INFO_FILE = "run_info.yaml"
LAST = "last"  # ckpt_path=last: the last.ckpt of the run in hydra.run.dir
# The distributions whose versions change what a run computes or how it is configured.
TRACKED_PACKAGES = ("torch", "lightning", "hydra-core", "torchmetrics", "omegaconf", "torchvision")
# The repository the code was installed from (editable install): src/trainlab -> root.
REPO_ROOT = Path(__file__).resolve().parents[2]
# TensorBoard event files are named events.out.tfevents.<second opened>.<host>.<pid>.<counter>.
EVENT_FILE_SECOND = re.compile(r"events\.out\.tfevents\.(\d+)\.")
Curve = list[tuple[int, float]]  # (step, value) points
# Written into a sweep folder when the sweep starts: the keys whose values set its jobs apart, and the command
# as the user typed it (a job started by submitit or joblib has another command line of its own).
SWEEP_KEYS_FILE = "sweep_keys.yaml"
SWEEP_COMMAND_FILE = "sweep_command.txt"
# A run's name in TensorBoard, MLflow and W&B is also a folder name: short, and only these characters.
UNSAFE_IN_NAME = re.compile(r"[^A-Za-z0-9._=,+@-]")
MAX_NAME_LENGTH = 80


# --- status.yaml: how a run ended ------------------------------------------------------------------
def write_status(output_dir: str | Path, status: str, **details: object) -> None:
    """Write `status.yaml` in the run folder (rank 0 only under DDP); a multirun job's records its overrides."""
    if process_rank() > 0:
        return
    if in_multirun():
        details.setdefault("overrides", job_overrides())
    path = Path(output_dir) / STATUS_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    OmegaConf.save(OmegaConf.create({"status": status, **details}), path)


def read_status(run_dir: Path) -> dict:
    """A run's recorded status; runs made before status files existed read as {'status': 'unknown'}."""
    path = run_dir / STATUS_FILE
    if not path.is_file():
        return {"status": "unknown"}
    return OmegaConf.to_container(OmegaConf.load(path))


def error_line(error: BaseException) -> str:
    """One line that names the error: a user error's own message, else the exception's type and first line."""
    message = user_error_message(error)
    if message is not None:
        return message
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0]}" if text else type(error).__name__


def objective_problem(cfg: DictConfig, metrics: dict[str, float]) -> str | None:
    """Why the run's objective (`optimized_metric`) is unusable, or None when it is a finite number."""
    name = cfg.get("optimized_metric")
    if not name:
        return None
    if name not in metrics:
        logged = ", ".join(sorted(metrics)) or "none"
        return (
            f"optimized_metric={name} is not a metric this run logged (it logged: {logged}); "
            f"set optimized_metric to one of them."
        )
    if not math.isfinite(metrics[name]):
        return f"optimized_metric {name} is {metrics[name]}: training diverged (try a smaller optimizer.lr)."
    return None


def resume_command(cfg: DictConfig) -> str:
    """The command that carries on a stopped run: the same one, resuming this folder's last.ckpt.

    In a multirun it is the same sweep into the same sweep folder, which skips finished jobs and
    resumes interrupted ones (see sweep_job_plan).
    """
    if in_multirun():
        return sweep_resume_command()
    args = [arg for arg in sys.argv[1:] if not arg.startswith(("ckpt_path=", "hydra.run.dir="))]
    if (checkpoint_dir(cfg) / "last.ckpt").is_file():
        args.append(f"ckpt_path={LAST}")
    return shlex.join([sys.argv[0], *args, f"hydra.run.dir={cfg.paths.output_dir}"])


def sweep_resume_command() -> str:
    """The sweep's command into the sweep's folder: it skips finished jobs and resumes the others."""
    program, *args = command_line()
    args = [arg for arg in args if not arg.startswith("hydra.sweep.dir=")]
    return shlex.join([program, *args, f"hydra.sweep.dir={HydraConfig.get().sweep.dir}"])


def command_line() -> list[str]:
    """The command that started this run: in a multirun, the sweep's command as recorded when it started."""
    if in_multirun():
        recorded = Path(HydraConfig.get().sweep.dir) / SWEEP_COMMAND_FILE
        if recorded.is_file():
            return shlex.split(recorded.read_text())
        return list(COMMAND_AT_START)
    return list(sys.argv)


def final_results(metrics: dict[str, float]) -> dict[str, float]:
    """What a run reports as its results: its final validation and test values (no training curves)."""
    return {name: float(value) for name, value in metrics.items() if name.startswith(("val/", "test/"))}


def final_metrics(run_dir: Path) -> dict[str, float]:
    """The last value of every scalar the run logged (see read_curves)."""
    return {tag: curve[-1][1] for tag, curve in read_curves(run_dir).items() if curve}


def sweep_job_plan(cfg: DictConfig) -> str:
    """What a multirun job does when its sweep runs again into the same folder: 'skip' a finished job,
    'resume' an interrupted one from its last.ckpt, else 'run' (a failed attempt's files are kept aside)."""
    output_dir = Path(cfg.paths.output_dir)
    recorded = read_status(output_dir)
    same_job = recorded.get("overrides") == job_overrides()  # job numbers are reused by a new search
    if recorded["status"] == OK and same_job:
        return "skip"
    if recorded["status"] in (INTERRUPTED, RUNNING) and same_job and (checkpoint_dir(cfg) / "last.ckpt").is_file():
        return "resume"
    if recorded["status"] != "unknown":
        set_aside_failed_attempt(output_dir)
    return "run"


def job_overrides() -> list[str]:
    """This multirun job's own overrides, as Hydra composed them."""
    return list(HydraConfig.get().overrides.task)


def set_aside_failed_attempt(output_dir: Path) -> Path:
    """Move a failed attempt's checkpoints, curves and status into attempt_<n>/ so a rerun starts clean."""
    number = 1
    while (output_dir / f"attempt_{number}").exists():
        number += 1
    aside = output_dir / f"attempt_{number}"
    aside.mkdir()
    for name in ("checkpoints", "tensorboard", "csv", STATUS_FILE):
        if (output_dir / name).exists():
            shutil.move(str(output_dir / name), aside / name)
    return aside


# --- run_info.yaml and config_tree.log: what reproduces a run ---------------------------------------
def git(*args: str) -> str | None:
    """Output of a git command in the repository, or None where git or the repository is missing."""
    try:
        result = subprocess.run(["git", *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=10, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return result.stdout.strip()


def git_state() -> dict[str, Any]:
    """The commit the code is at, and whether files differ from it (a dirty tree is not fully reproducible)."""
    commit = git("rev-parse", "HEAD")
    if not commit:
        return {"commit": None, "dirty": None}
    changes = git("status", "--porcelain")
    return {"commit": commit, "dirty": bool(changes) if changes is not None else None}


def package_versions(names: tuple[str, ...] = TRACKED_PACKAGES) -> dict[str, str | None]:
    versions: dict[str, str | None] = {}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def collect_run_info(cfg: DictConfig) -> dict[str, Any]:
    tags = cfg.get("tags")
    return {
        "task_name": cfg.get("task_name"),
        "tags": list(tags) if tags is not None else [],
        "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": shlex.join(command_line()),
        "cwd": str(Path.cwd()),
        "git": git_state(),
        "python": platform.python_version(),
        "packages": package_versions(),
    }


def write_run_info(cfg: DictConfig, run_dir: Path) -> Path:
    """Write the run's metadata into its folder (run_info_1.yaml, ... when a run is resumed there)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    path, number = run_dir / RUN_INFO_FILE, 0
    while path.exists():
        number += 1
        path = run_dir / f"{Path(RUN_INFO_FILE).stem}_{number}.yaml"
    path.write_text(OmegaConf.to_yaml(OmegaConf.create(collect_run_info(cfg))))
    return path


def print_config_tree(cfg: DictConfig, save_to: Path | None = None, show: bool = True) -> None:
    """The composed config as a Rich tree, main sections first, printed when `show`; saved as plain text too."""
    import rich.syntax
    import rich.tree
    from rich.console import Console

    first = ("data", "model", "optimizer", "scheduler", "regularizer", "callbacks", "logger", "trainer")
    tree = rich.tree.Tree("CONFIG", style="bold", guide_style="dim")
    for key in [k for k in first if k in cfg] + [k for k in cfg if k not in first]:
        value = cfg[key]
        text = OmegaConf.to_yaml(value, resolve=False) if isinstance(value, DictConfig) else str(value)
        tree.add(str(key), style="bold", guide_style="dim").add(rich.syntax.Syntax(text, "yaml", theme="ansi_dark"))
    if show:
        Console().print(tree)
    if save_to is not None:
        with open(save_to, "w") as file:
            Console(file=file, width=120).print(tree)


# --- guarding and cleaning the folder ---------------------------------------------------------------
def refuse_folder_with_checkpoints(checkpoint_dir: Path) -> None:
    """A fresh run must not write into a folder that already holds another run's checkpoints."""
    if process_rank() > 0:  # DDP's other processes join rank 0's run; rank 0 has checked the folder
        return
    existing = sorted(checkpoint_dir.glob("*.ckpt")) if checkpoint_dir.is_dir() else []
    if existing:
        raise ConfigError(
            f"hydra.run.dir={checkpoint_dir.parent} already holds checkpoints ({existing[0].name}); "
            "start a fresh run in a new folder, or add ckpt_path=last to resume that run."
        )


class GuardRunFolder(Callback):
    """Hydra callback: refuse a fresh run in a folder holding checkpoints, before Hydra writes anything into it.

    Hydra saves the run's config into `<run dir>/.hydra/` before the task starts, which would
    overwrite the saved config of the run that already lives there.
    """

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        if config.get("ckpt_path") is not None or not config.get("train", True):
            return
        try:
            refuse_folder_with_checkpoints(Path(config.hydra.run.dir) / "checkpoints")
        except ConfigError as error:
            print(f"Error: {error}", file=sys.stderr)
            raise SystemExit(2) from None


# A sweep's data, shared by its jobs (data/shared.py): one file per dataset, removed when the sweep ends.
SHARED_DATA_DIR = "shared_data"


class ReportSweep(Callback):
    """Hydra callback: a multirun records which keys it varies (its jobs are named by them), and ends with its
    folder, how its jobs ended, and the command that summarises them."""

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        sweep = Path(config.hydra.sweep.dir)
        sweep.mkdir(parents=True, exist_ok=True)
        OmegaConf.save(OmegaConf.create({"varying": sweep_keys(config)}), sweep / SWEEP_KEYS_FILE)
        (sweep / SWEEP_COMMAND_FILE).write_text(shlex.join(COMMAND_AT_START) + "\n")

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep = Path(config.hydra.sweep.dir)
        ended = [str(read_status(folder).get("status")) for folder in find_run_folders(sweep)] if sweep.is_dir() else []
        counts = ", ".join(f"{ended.count(status)} {status}" for status in dict.fromkeys(ended)) or "no jobs"
        print(f"Sweep folder: {sweep} ({len(ended)} jobs: {counts})")
        print(f"Summarise it: {program('trainlab-summarize')} {shlex.quote(str(sweep))}")
        shutil.rmtree(sweep / SHARED_DATA_DIR, ignore_errors=True)  # the jobs' shared data: rebuilt when needed


# --- run names: what a logger calls a run ---------------------------------------------------------
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


def program(name: str) -> str:
    """A console script of this environment as a shell finds it: its name when it is on the PATH, else its path."""
    installed = Path(sys.executable).parent / name
    found = shutil.which(name)
    if found and Path(found).resolve() == installed.resolve():
        return name
    return shlex.quote(str(installed))


def checkpoint_dir(cfg: DictConfig) -> Path:
    """The folder this run writes last.ckpt to (the last_checkpoint callback's, else the run folder's)."""
    dirpath = ((cfg.get("callbacks") or {}).get("last_checkpoint") or {}).get("dirpath")
    return Path(dirpath) if dirpath else Path(cfg.paths.output_dir) / "checkpoints"


def resolve_checkpoint(cfg: DictConfig) -> str | None:
    """Turn `ckpt_path=last` into this run folder's last.ckpt (set in cfg); a fresh run refuses a used folder."""
    ckpt_path = cfg.get("ckpt_path")
    folder = checkpoint_dir(cfg)
    if ckpt_path is None:
        if cfg.get("train", True):
            refuse_folder_with_checkpoints(folder)  # sweeps' jobs and direct calls have no Hydra guard
        return None
    if ckpt_path == LAST:
        last = folder / "last.ckpt"
        if not last.is_file():
            raise ConfigError(
                f"ckpt_path=last found no last.ckpt in {folder}; set hydra.run.dir to the folder of the run to resume "
                "(e.g. hydra.run.dir=logs/train/runs/<timestamp>) or give a checkpoint file as ckpt_path=<path>."
            )
        ckpt_path = str(last)
        with open_dict(cfg):
            cfg.ckpt_path = ckpt_path  # the run config saved in new checkpoints names the real file
    return ckpt_path


def chosen_by_user(key: str) -> bool:
    """Whether `key` (e.g. hydra.run.dir) was set on the command line."""
    return any(override.split("=", 1)[0].lstrip("+~") == key for override in HydraConfig.get().overrides.hydra)


def discard_unstarted_run_folder() -> bool:
    """Delete this process's run folder if it holds only what Hydra wrote at start; return whether it did.

    Called when a config error stops a run before it trained, so that no folder is left behind
    that looks like a result. A folder the user named (hydra.run.dir / hydra.sweep.dir) is never
    touched, nor one holding any file that this process did not write.
    """
    if not HydraConfig.initialized() or chosen_by_user("hydra.run.dir") or chosen_by_user("hydra.sweep.dir"):
        return False
    folder = Path(HydraConfig.get().runtime.output_dir)
    if not folder.is_dir():
        return False
    log_file = Path(HydraConfig.get().job_logging.handlers.file.filename).name
    for path in folder.rglob("*"):
        if path.is_dir():
            continue
        name = path.relative_to(folder).as_posix()
        if name not in START_FILES | {log_file} or path.stat().st_mtime < PROCESS_START:
            return False
    shutil.rmtree(folder)
    return True


def continue_event_files(log_dir: str | Path) -> None:
    """Let a resumed run's event file sort after the files already in its TensorBoard folder.

    TensorBoard reads a folder's event files in the order of their names, which begin with the
    second the file was opened, then host, process id and a per-process counter. A file opened in
    the same second as an earlier one can sort before it ("...11" before "...8"), and TensorBoard
    would then show the resumed epochs before the first ones. Waiting for the next second (at most
    one, and only when a run is resumed right after it was written) keeps the names in run order.
    """
    opened = [
        int(m[1]) for path in Path(log_dir).glob("events.out.tfevents.*") if (m := EVENT_FILE_SECOND.match(path.name))
    ]
    wait = max(opened, default=0) + 1 - time.time()
    if 0 < wait <= 1:
        time.sleep(wait)


# --- reading runs back ------------------------------------------------------------------------------
@dataclass
class RunRecord:
    """One run (a single run, or one job of a multirun) as it was left on disk."""

    path: Path
    name: str  # the folder relative to the summarised PATH
    overrides: dict[str, str]
    config: DictConfig
    sweeper: DictConfig
    status: str
    error: str | None
    scalars: dict[str, Curve] = field(default_factory=dict)

    def final(self, tag: str) -> float | None:
        curve = self.scalars.get(tag)
        return curve[-1][1] if curve else None


def find_run_folders(root: Path) -> list[Path]:
    """Every run folder under root (root itself included): folders holding `.hydra/overrides.yaml`."""
    folders = {path.parent.parent for path in root.rglob(".hydra/overrides.yaml")}
    return sorted(folders, key=lambda folder: natural_key(folder.relative_to(root)))


def natural_key(path: Path) -> tuple:
    """Sort job folders 0, 1, 2, ..., 10 rather than 0, 1, 10, 2."""
    return tuple((0, int(part), "") if part.isdigit() else (1, 0, part) for part in path.parts)


def parse_overrides(overrides: list[str]) -> dict[str, str]:
    """['+x=1', 'optimizer.lr=0.1'] -> {'x': '1', 'optimizer.lr': '0.1'}; deletions (~key) are kept as such."""
    parsed: dict[str, str] = {}
    for override in overrides:
        key, _, value = override.partition("=")
        parsed[key.lstrip("+")] = value
    return parsed


def read_scalars(run_dir: Path) -> dict[str, Curve]:
    """Every scalar tag in the run's TensorBoard event files, as TensorBoard's own reader returns them.

    The points come in the order TensorBoard shows them; a resumed run's event files are named so
    that this is step order (see continue_event_files).
    """
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator  # slow to import

    curves: dict[str, Curve] = {}
    for log_dir in sorted({path.parent for path in run_dir.rglob("events.out.tfevents.*")}):
        accumulator = EventAccumulator(str(log_dir), size_guidance={"scalars": 0})
        accumulator.Reload()
        for tag in accumulator.Tags()["scalars"]:
            curves.setdefault(tag, []).extend((event.step, event.value) for event in accumulator.Scalars(tag))
    return curves


def read_csv_scalars(run_dir: Path) -> dict[str, Curve]:
    """Every metric in the run's CSV log (`csv/metrics.csv`, one row per logging step), as (step, value) points."""
    curves: dict[str, Curve] = {}
    for path in sorted(run_dir.glob("csv/**/metrics.csv")):
        with path.open(newline="") as file:
            for row in csv.DictReader(file):
                step = int(row.get("step") or 0)
                for tag, value in row.items():
                    if tag != "step" and value not in ("", None):
                        curves.setdefault(tag, []).append((step, float(value)))
    return curves


def read_curves(run_dir: Path) -> dict[str, Curve]:
    """A run's curves from what it recorded itself, whichever loggers it had: its TensorBoard event files, else
    its CSV log, else the final metrics its status.yaml records (one point each; e.g. an MLflow- or W&B-only run)."""
    curves = read_scalars(run_dir) or read_csv_scalars(run_dir)
    if curves:
        return curves
    status = read_status(run_dir)
    recorded = dict(status.get("metrics") or {})
    if not recorded and status.get("optimized_metric") and status.get("value") is not None:
        recorded[status["optimized_metric"]] = status["value"]  # runs recorded before status.yaml held metrics
    return {tag: [(0, float(value))] for tag, value in recorded.items()}


def read_run(run_dir: Path, root: Path) -> RunRecord:
    hydra_dir = run_dir / ".hydra"
    hydra_file = hydra_dir / "hydra.yaml"
    hydra_cfg = OmegaConf.load(hydra_file).hydra if hydra_file.is_file() else OmegaConf.create({})
    config_file = hydra_dir / "config.yaml"
    status = read_status(run_dir)
    return RunRecord(
        path=run_dir,
        name=str(run_dir.relative_to(root)) if run_dir != root else run_dir.name,
        overrides=parse_overrides(list(OmegaConf.load(hydra_dir / "overrides.yaml"))),
        config=OmegaConf.load(config_file) if config_file.is_file() else OmegaConf.create({}),
        sweeper=hydra_cfg.get("sweeper") or OmegaConf.create({}),
        status=str(status.get("status")),
        error=status.get("error"),
        scalars=read_curves(run_dir),
    )
