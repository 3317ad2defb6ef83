"""What a run resumes from: `ckpt_path=last`, a sweep's job run again into its folder, and a resumed run's
TensorBoard files, which must sort after the ones it wrote before."""

import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from omegaconf import DictConfig, open_dict

from runkit.config import ConfigError
from runkit.process.ddp import pass_to_other_ranks
from runkit.process.mode import in_multirun, process_rank
from runkit.runs.status import INTERRUPTED, OK, RUNNING, STATUS_FILE, job_overrides, read_status

LAST = "last"  # ckpt_path=last: the last.ckpt of the run in hydra.run.dir
# The state at the end of the latest epoch, what runs resume from (callbacks.last_checkpoint writes it).
LAST_CHECKPOINT_FILE = "last.ckpt"

# TensorBoard event files are named events.out.tfevents.<second opened>.<host>.<pid>.<counter>.
EVENT_FILES = "events.out.tfevents.*"
EVENT_FILE_SECOND = re.compile(r"events\.out\.tfevents\.(\d+)\.")
ATTEMPT_PREFIX = "attempt_"  # a failed attempt of a sweep's job, set aside in its folder: attempt_<n>/


def checkpoint_dir(cfg: DictConfig) -> Path:
    """The folder this run writes last.ckpt to (the last_checkpoint callback's, else the run folder's)."""
    dirpath = ((cfg.get("callbacks") or {}).get("last_checkpoint") or {}).get("dirpath")
    return Path(dirpath) if dirpath else Path(cfg.paths.output_dir) / "checkpoints"


def last_checkpoint(cfg: DictConfig) -> Path:
    """Where this run's last.ckpt is, or will be."""
    return checkpoint_dir(cfg) / LAST_CHECKPOINT_FILE


@dataclass(frozen=True)
class StartingPoint:
    """What a run starts from: a checkpoint file (None: fresh weights), or nothing to do at all."""

    checkpoint: str | None
    finished: bool = False  # the run, or this sweep job, had finished already: nothing to train


def starting_point(cfg: DictConfig) -> StartingPoint:
    """The one place that decides what a run starts from.

    A sweep's job run again into its folder is skipped when it finished, resumed from its last.ckpt when it was
    interrupted, and run afresh otherwise. `ckpt_path=last` is this run folder's last.ckpt, or nothing to do when
    the run finished under the same limits; `ckpt_path=<file>` is that file; a fresh run refuses a used folder.
    """
    if in_multirun():
        plan = sweep_job_plan(cfg)
        if plan == "skip":
            return StartingPoint(None, finished=True)
        if plan == "resume":
            with open_dict(cfg):
                cfg.ckpt_path = LAST
            pass_to_other_ranks(f"ckpt_path={LAST}")
    if cfg.get("ckpt_path") == LAST and finished_before(cfg):
        return StartingPoint(str(last_checkpoint(cfg)), finished=True)
    return StartingPoint(resolve_checkpoint(cfg))


def finished_before(cfg: DictConfig) -> bool:
    """A run whose folder says it finished (status ok) with a last.ckpt, asked again for the same limits."""
    # Imported here: checkpoints loads torch and Lightning, and the command lines import this module (through
    # runs.folder) before a config is checked.
    from runkit.checkpoints import load_checkpoint, stored_run_config
    from runkit.trusted_code import trust_of

    last = last_checkpoint(cfg)
    if not cfg.get("train", True) or not last.is_file() or read_status(Path(cfg.paths.output_dir))["status"] != OK:
        return False
    try:
        then = stored_run_config(load_checkpoint(last, trust_of(cfg))).get("trainer") or {}
    except ConfigError:  # a damaged last.ckpt: the run reports it and is recorded as failed
        return False
    return all(then.get(key) == cfg.trainer.get(key) for key in ("max_epochs", "max_steps", "min_epochs"))


def resume_line(checkpoint: dict, max_epochs: int | None) -> str:
    """What a resumed run says as it starts training: the epoch its checkpoint was saved after, counted from 1 as
    the console counts epochs (the bar's next one is `Epoch <that + 1>`), and the step."""
    done = int(checkpoint["epoch"]) + 1  # Lightning stores the zero-based epoch the checkpoint was saved in
    limit = f" of {max_epochs}" if max_epochs is not None and max_epochs > 0 else ""
    return f"Resuming after epoch {done}{limit} (step {int(checkpoint['global_step'])})."


def resolve_checkpoint(cfg: DictConfig) -> str | None:
    """Turn `ckpt_path=last` into this run folder's last.ckpt (set in cfg); a fresh run refuses a used folder."""
    ckpt_path = cfg.get("ckpt_path")
    folder = checkpoint_dir(cfg)
    if ckpt_path is None:
        if cfg.get("train", True):
            refuse_folder_with_checkpoints(folder)  # sweeps' jobs and direct calls have no Hydra guard
        return None
    if ckpt_path == LAST:
        last = last_checkpoint(cfg)
        if not last.is_file():
            raise ConfigError(
                f"ckpt_path=last found no last.ckpt in {folder}; set hydra.run.dir to the folder of the run to resume "
                "(e.g. hydra.run.dir=logs/train/runs/<run>) or give a checkpoint file as ckpt_path=<path>."
            )
        ckpt_path = str(last)
        with open_dict(cfg):
            cfg.ckpt_path = ckpt_path  # the run config saved in new checkpoints names the real file
    return ckpt_path


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


def sweep_job_plan(cfg: DictConfig) -> str:
    """What a multirun job does when its sweep runs again into the same folder: 'skip' a finished job,
    'resume' an interrupted one from its last.ckpt, else 'run' (a failed attempt's files are kept aside)."""
    output_dir = Path(cfg.paths.output_dir)
    recorded = read_status(output_dir)
    same_job = recorded.get("overrides") == job_overrides()  # job numbers are reused by a new search
    if recorded["status"] == OK and same_job:
        return "skip"
    if recorded["status"] in (INTERRUPTED, RUNNING) and same_job and last_checkpoint(cfg).is_file():
        return "resume"
    if recorded["status"] != "unknown":
        set_aside_failed_attempt(output_dir)
    return "run"


def set_aside_failed_attempt(output_dir: Path) -> Path:
    """Move a failed attempt's checkpoints, curves and status into attempt_<n>/ so a rerun starts clean."""
    number = 1
    while (output_dir / f"{ATTEMPT_PREFIX}{number}").exists():
        number += 1
    aside = output_dir / f"{ATTEMPT_PREFIX}{number}"
    aside.mkdir()
    # TensorBoard's event files (and Lightning's hparams.yaml beside them) are in the run folder itself.
    names = ["checkpoints", "csv", STATUS_FILE, "hparams.yaml", *(path.name for path in output_dir.glob(EVENT_FILES))]
    for name in names:
        if (output_dir / name).exists():
            shutil.move(str(output_dir / name), aside / name)
    return aside


def continue_event_files(log_dir: str | Path) -> None:
    """Let a resumed run's event file sort after the files already in its TensorBoard folder.

    TensorBoard reads a folder's event files in the order of their names, which begin with the
    second the file was opened, then host, process id and a per-process counter. A file opened in
    the same second as an earlier one can sort before it ("...11" before "...8"), and TensorBoard
    would then show the resumed epochs before the first ones. Waiting for the next second (at most
    one, and only when a run is resumed right after it was written) keeps the names in run order.
    """
    opened = [int(m[1]) for path in Path(log_dir).glob(EVENT_FILES) if (m := EVENT_FILE_SECOND.match(path.name))]
    wait = max(opened, default=0) + 1 - time.time()
    if 0 < wait <= 1:
        time.sleep(wait)
