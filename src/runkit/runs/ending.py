"""How a run ended, recorded in one place: status.yaml says ok, pruned, failed or interrupted."""

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from omegaconf import DictConfig

from runkit.callbacks.optuna_trial import TrialPruned
from runkit.config import ConfigError
from runkit.config.errors import ResourceError
from runkit.process.interruption import RunInterrupted, interruption_behind
from runkit.runs.commands import resume_command
from runkit.runs.rank_failure import failure_of_another_rank
from runkit.runs.status import (
    FAILED,
    INTERRUPTED,
    OK,
    PRUNED,
    RUNNING,
    STATUS_FILE,
    error_line,
    final_results,
    objective_problem,
    write_status,
)


@dataclass
class Ending:
    """What the run inside `recording_how_it_ends` hands back: its final metrics, and so its objective."""

    optimized_metric: str | None
    metrics: dict[str, float] = field(default_factory=dict)

    @property
    def objective(self) -> float | None:
        return self.metrics.get(self.optimized_metric) if self.optimized_metric else None


@contextmanager
def recording_how_it_ends(cfg: DictConfig) -> Iterator[Ending]:
    """status.yaml says `running` inside the block and, when it is left, how the run ended: ok with its results,
    pruned by the search's pruner, failed with one line, or interrupted with the command that resumes it.

    The block sets `ending.metrics`; a run whose objective is missing or not finite has failed. Exceptions go on
    to the caller, which decides what the process does next (a sweep goes on, a single run exits). A status.yaml
    that cannot be written ends the run with one line that says how it ended all the same.
    """
    output_dir = cfg.paths.output_dir
    ending = Ending(cfg.get("optimized_metric"))
    record(output_dir, None, RUNNING)
    try:
        yield ending
        problem = objective_problem(cfg, ending.metrics)
        if problem is not None:
            raise ConfigError(problem)
    except TrialPruned as pruned:
        # The epoch it stopped after, counted from 1 as the console counts: `epoch: 1` is after the first epoch.
        epoch = pruned.epoch + 1
        outcome = f"The trial was pruned after epoch {epoch}"
        record(output_dir, outcome, PRUNED, optimized_metric=pruned.metric, value=pruned.value, epoch=epoch)
        raise
    except RunInterrupted as stop:
        record_interruption(cfg, stop)
        raise
    except Exception as error:
        failed_elsewhere = failure_of_another_rank(output_dir)  # under DDP: another rank failed first
        if failed_elsewhere is not None:
            record(output_dir, f"The run failed: {failed_elsewhere}", FAILED, error=str(failed_elsewhere))
            raise failed_elsewhere from error
        stop = interruption_behind(error)
        if stop is None:
            line = error_line(error)
            record(output_dir, f"The run failed: {line}", FAILED, error=line)  # the traceback goes to the log
            raise
        # The signal landed in a library's clean-up, which raised an error of its own: still a stop, not a failure.
        record_interruption(cfg, stop)
        raise stop from error
    record(
        output_dir,
        "The run finished",
        OK,
        optimized_metric=ending.optimized_metric,
        value=ending.objective,
        metrics=final_results(ending.metrics),
    )


def record_interruption(cfg: DictConfig, stop: RunInterrupted) -> None:
    resume = resume_command(cfg)
    outcome = f"The run was stopped by {stop.signal_name} (resume with: {resume})"
    record(cfg.paths.output_dir, outcome, INTERRUPTED, signal=stop.signal_name, resume=resume)


def record(output_dir: str, outcome: str | None, status: str, **details: object) -> None:
    """Write status.yaml; when it cannot be written (a full disk, a read-only file system, a folder in its place),
    end the run with one line: how it ended (`outcome`; None before it started), and why it is not recorded."""
    try:
        write_status(output_dir, status, **details)
    except OSError as error:
        unwritten = f"{Path(output_dir) / STATUS_FILE} could not be written"
        reason = error.strerror or type(error).__name__
        if outcome is None:
            raise ResourceError(f"The run did not start: {unwritten} ({reason}).") from error
        raise ResourceError(f"{outcome}, but {unwritten} to say so ({reason}).") from error
