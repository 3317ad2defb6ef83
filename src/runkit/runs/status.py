"""status.yaml: how a run ended (running, ok, failed, interrupted, pruned), and the one line that says why."""

import math
import os
from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from runkit.config import user_error_message
from runkit.process.mode import in_multirun, process_rank

STATUS_FILE = "status.yaml"

RUNNING, OK, FAILED, INTERRUPTED = "running", "ok", "failed", "interrupted"

PRUNED = "pruned"  # an Optuna trial stopped early by the search's pruner: not a failure, but not run to the end


def write_status(output_dir: str | Path, status: str, from_any_rank: bool = False, **details: object) -> None:
    """Write `status.yaml` in the run folder (rank 0 only under DDP, unless `from_any_rank`); a multirun job's
    records its overrides. The file is replaced whole: a write that fails (a full disk) leaves the one before.
    An OSError says it could not be written."""
    if process_rank() > 0 and not from_any_rank:
        return
    if in_multirun():
        details.setdefault("overrides", job_overrides())
    path = Path(output_dir) / STATUS_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{STATUS_FILE}.{os.getpid()}.partial")
    try:
        partial.write_text(OmegaConf.to_yaml(OmegaConf.create({"status": status, **details})))
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)


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


def final_results(metrics: dict[str, float]) -> dict[str, float]:
    """What a run reports as its results: its final validation and test values (no training curves)."""
    return {name: float(value) for name, value in metrics.items() if name.startswith(("val/", "test/"))}


def job_overrides() -> list[str]:
    """This multirun job's own overrides, as Hydra composed them."""
    return list(HydraConfig.get().overrides.task)
