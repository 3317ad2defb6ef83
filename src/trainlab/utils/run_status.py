"""Each run records how it ended in `status.yaml`, and a failing job in a multirun does not stop the sweep.

Hydra's launchers run every job of a sweep, but the basic sweeper re-raises the first job's exception
once the batch is done, and the Optuna sweeper stops at the first failed trial. So in a multirun the
train task catches the failure itself, records it, and returns None: the basic and joblib sweeps go on,
and Optuna marks the trial as failed (None is not a number) and asks for the next one. A single run
still raises, so its exit code says it failed.
"""

import logging
import math
from collections.abc import Callable
from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode

# Lightning's own rank_zero_only (Lightning re-exports this object and sets its rank), imported from
# where it is defined so that trainlab-summarize can read status files without importing Lightning.
from lightning_utilities.core.rank_zero import rank_zero_only
from omegaconf import DictConfig, OmegaConf

from trainlab.utils.cli import user_error_message

log = logging.getLogger(__name__)

STATUS_FILE = "status.yaml"
RUNNING, OK, FAILED = "running", "ok", "failed"


@rank_zero_only
def write_status(output_dir: str | Path, status: str, **details: object) -> None:
    """Write `status.yaml` in the run folder (rank 0 only under DDP)."""
    path = Path(output_dir) / STATUS_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    OmegaConf.save(OmegaConf.create({"status": status, **details}), path)


def read_status(run_dir: Path) -> dict:
    """A run's recorded status; runs made before status files existed read as {'status': 'unknown'}."""
    path = run_dir / STATUS_FILE
    if not path.is_file():
        return {"status": "unknown"}
    return OmegaConf.to_container(OmegaConf.load(path))


def in_multirun() -> bool:
    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


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


def train_and_record(train: Callable[[DictConfig], dict[str, float]], cfg: DictConfig) -> dict[str, float] | None:
    """Run `train(cfg)` and record its outcome; in a multirun a failure returns None instead of raising."""
    output_dir = cfg.paths.output_dir
    write_status(output_dir, RUNNING)
    try:
        metrics = train(cfg)
    except Exception as error:
        write_status(output_dir, FAILED, error=error_line(error))  # the traceback goes to the job's log
        if not in_multirun():
            raise
        log.error("This job failed, the sweep goes on: %s", error_line(error), exc_info=True)
        return None
    problem = objective_problem(cfg, metrics)
    if problem is not None:
        write_status(output_dir, FAILED, error=problem)
        log.error("This run failed: %s", problem)
        return None
    name = cfg.get("optimized_metric")
    write_status(output_dir, OK, optimized_metric=name, value=metrics.get(name))
    return metrics
