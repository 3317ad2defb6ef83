"""A run folder guarded and cleaned: Hydra's callbacks that refuse a fresh run in a used folder and report a
sweep, and the removal of a folder whose run never started."""

import shlex
import shutil
import time
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from runkit.config import ConfigError, exit_with_error
from runkit.config.paths import unwritable_folder
from runkit.process.ddp import COMMAND_AT_START
from runkit.process.orphan import mark_sweep_process
from runkit.runs.commands import SWEEP_COMMAND_FILE, program, tensorboard_command
from runkit.runs.info import CODE_DIFF_FILE, RUN_INFO_FILE
from runkit.runs.job_lock import LOCK_FILE, hold_run_folder
from runkit.runs.names import SWEEP_KEYS_FILE, sweep_keys
from runkit.runs.reading import find_run_folders
from runkit.runs.resume import refuse_folder_with_checkpoints
from runkit.runs.status import read_status
from runkit.sweep_workers import worker_name

# Set when this module is first imported, before Hydra creates the run folder.
PROCESS_START = time.time()
# Whether the run folder was there before this process (GuardRunFolder records it before Hydra makes it).
RUN_DIR_EXISTED_AT_START: dict[str, bool] = {}

# What Hydra and the start of a run write before any training: the saved config and the log files.
START_FILES = {
    ".hydra/config.yaml",
    ".hydra/hydra.yaml",
    ".hydra/overrides.yaml",
    "config_tree.log",
    CODE_DIFF_FILE,
    RUN_INFO_FILE,
    "status.yaml",
    LOCK_FILE,
}


class GuardRunFolder(Callback):
    """Hydra callback: wait while another process runs in the run folder, then refuse a fresh run in a folder
    holding checkpoints, before Hydra writes anything into it.

    Hydra saves the run's config into `<run dir>/.hydra/` before the task starts, which would
    overwrite the saved config of the run that already lives there.
    """

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        run_dir = Path(config.hydra.run.dir)
        refuse_unwritable(run_dir, "run folder")
        RUN_DIR_EXISTED_AT_START[str(run_dir.resolve())] = run_dir.exists()
        hold_run_folder(run_dir)  # another process running in it finishes first: its saved config stays its own
        if config.get("ckpt_path") is not None or not config.get("train", True):
            return
        try:
            refuse_folder_with_checkpoints(Path(config.hydra.run.dir) / "checkpoints")
        except ConfigError as error:
            exit_with_error(error)


# A sweep's data, shared by its jobs (data/shared.py): one file per dataset, removed when the sweep ends.
SHARED_DATA_DIR = "shared_data"


class ReportSweep(Callback):
    """Hydra callback: a multirun records which keys it varies (its jobs are named by them), and ends with its
    folder, how its jobs ended, and the command that summarises them."""

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        mark_sweep_process()  # the jobs it starts in processes of their own stop when it dies (process/orphan.py)
        if worker_name():  # a search's worker: the command that started the workers speaks for the sweep
            return
        sweep = Path(config.hydra.sweep.dir)
        refuse_unwritable(sweep, "sweep folder")
        sweep.mkdir(parents=True, exist_ok=True)
        OmegaConf.save(OmegaConf.create({"varying": sweep_keys(config)}), sweep / SWEEP_KEYS_FILE)
        (sweep / SWEEP_COMMAND_FILE).write_text(shlex.join(COMMAND_AT_START) + "\n")

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        if worker_name():
            return
        sweep = Path(config.hydra.sweep.dir)
        ended = [str(read_status(folder).get("status")) for folder in find_run_folders(sweep)] if sweep.is_dir() else []
        counts = ", ".join(f"{ended.count(status)} {status}" for status in dict.fromkeys(ended)) or "no jobs"
        print(f"Sweep folder: {sweep} ({len(ended)} jobs: {counts})")
        print(f"Summarise it: {program('trainlab-summarize')} {shlex.quote(str(sweep))}")
        if any(sweep.glob("*/events.out.tfevents.*")):
            print(f"View the curves: {tensorboard_command(sweep)}")
        shutil.rmtree(sweep / SHARED_DATA_DIR, ignore_errors=True)  # the jobs' shared data: rebuilt when needed


def refuse_unwritable(folder: Path, kind: str) -> None:
    """End the command in one line, before Hydra makes `folder`, when it cannot be made or written."""
    problem = unwritable_folder(folder)
    if problem:
        setting = "hydra.sweep.dir" if kind == "sweep folder" else "hydra.run.dir"
        exit_with_error(
            ConfigError(f"The {kind} {folder} {problem}; set paths.log_dir (or {setting}) to a folder you can write.")
        )


def chosen_by_user(key: str) -> bool:
    """Whether `key` (e.g. hydra.run.dir) was set on the command line."""
    return any(override.split("=", 1)[0].lstrip("+~") == key for override in HydraConfig.get().overrides.hydra)


def empty_event_file(path: Path) -> bool:
    """A TensorBoard event file that a logger opened but wrote nothing into (its header alone)."""
    if not path.name.startswith("events.out.tfevents."):
        return False
    from tensorboard.backend.event_processing.event_file_loader import EventFileLoader

    return not any(event.HasField("summary") for event in EventFileLoader(str(path)).Load())


def discard_unstarted_run_folder() -> bool:
    """Delete this process's run folder if it holds only what Hydra wrote at start; return whether it did.

    Called when a config error or a signal stops a run before it trained, so that no folder is left behind
    that looks like a result. A folder the user named (hydra.run.dir / hydra.sweep.dir) is touched only when
    this process made it, and never one holding any file that this process did not write.
    """
    if not HydraConfig.initialized() or chosen_by_user("hydra.sweep.dir"):
        return False
    folder = Path(HydraConfig.get().runtime.output_dir)
    made_here = RUN_DIR_EXISTED_AT_START.get(str(folder.resolve())) is False
    if not folder.is_dir() or (chosen_by_user("hydra.run.dir") and not made_here):
        return False
    log_file = Path(HydraConfig.get().job_logging.handlers.file.filename).name
    for path in folder.rglob("*"):
        if path.is_dir():
            continue
        name = path.relative_to(folder).as_posix()
        written_at_start = name in START_FILES | {log_file} or empty_event_file(path)
        if not written_at_start or path.stat().st_mtime < PROCESS_START:
            return False
    shutil.rmtree(folder)
    return True
