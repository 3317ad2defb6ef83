"""How a run ended, recorded in one place: status.yaml says ok, pruned, failed or interrupted."""

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from omegaconf import DictConfig

from runkit.callbacks.optuna_trial import TrialPruned
from runkit.config import ConfigError
from runkit.process.interruption import RunInterrupted, interruption_behind
from runkit.runs.commands import resume_command
from runkit.runs.status import (
    FAILED,
    INTERRUPTED,
    OK,
    PRUNED,
    RUNNING,
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
    to the caller, which decides what the process does next (a sweep goes on, a single run exits).
    """
    output_dir = cfg.paths.output_dir
    ending = Ending(cfg.get("optimized_metric"))
    write_status(output_dir, RUNNING)
    try:
        yield ending
        problem = objective_problem(cfg, ending.metrics)
        if problem is not None:
            raise ConfigError(problem)
    except TrialPruned as pruned:
        # The epoch it stopped after, counted from 1 as the console counts: `epoch: 1` is after the first epoch.
        epoch = pruned.epoch + 1
        write_status(output_dir, PRUNED, optimized_metric=pruned.metric, value=pruned.value, epoch=epoch)
        raise
    except RunInterrupted as stop:
        write_status(output_dir, INTERRUPTED, signal=stop.signal_name, resume=resume_command(cfg))
        raise
    except Exception as error:
        stop = interruption_behind(error)
        if stop is None:
            write_status(output_dir, FAILED, error=error_line(error))  # the traceback goes to the log
            raise
        # The signal landed in a library's clean-up, which raised an error of its own: still a stop, not a failure.
        write_status(output_dir, INTERRUPTED, signal=stop.signal_name, resume=resume_command(cfg))
        raise stop from error
    write_status(
        output_dir,
        OK,
        optimized_metric=ending.optimized_metric,
        value=ending.objective,
        metrics=final_results(ending.metrics),
    )
