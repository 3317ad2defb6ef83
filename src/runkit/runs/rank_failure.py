"""Under DDP, the rank that fails first records why, for the whole run.

When one rank fails (out of memory on its GPU, say), the others see only a lost connection ("Connection closed
by peer"), or nothing at all while they wait in an NCCL all-reduce. Rank 0 writes the run's status.yaml, but it
cannot see another rank's error; and Lightning's launcher SIGKILLs rank 0 within 5 s of another rank's exit with
a non-zero code, so rank 0 may never get to record anything.

So the first rank to fail claims the failure, from Lightning's on_exception hook, which runs before that rank's
connections close (so before any other rank's error that the loss causes): it creates a marker file in the run
folder, which only one rank can create, and writes status.yaml `failed` with its own line. A rank whose error
comes after the claim failed because of it: it ends quietly, its line already recorded and printed by the rank
that claimed it. Rank 0 ends with the claimed record either way. The marker stays until the run starts again.
"""

import os
from collections.abc import Callable
from pathlib import Path

import lightning.pytorch as pl
from lightning.pytorch.callbacks import Callback

from runkit.callbacks.optuna_trial import TrialPruned
from runkit.config.errors import RankFailed
from runkit.process.mode import process_rank
from runkit.runs.status import FAILED, error_line, write_status

FAILED_RANK_FILE = ".failed_rank"  # in a failed DDP run's folder: which rank failed first, and its line


class RecordRankFailure(Callback):
    """The first rank of a DDP run to fail claims the failure and records it in status.yaml."""

    def __init__(self, output_dir: str, explain: Callable[[BaseException], Exception | None] = lambda _: None) -> None:
        self.output_dir = Path(output_dir)
        self.explain = explain  # the error as the run reports it, where it differs (out of memory: what to change)

    def on_exception(self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException) -> None:
        if trainer.world_size < 2 or not isinstance(exception, Exception) or isinstance(exception, TrialPruned):
            return  # one process records its own end; interruptions and a pruned trial end every rank alike
        line = ranks_line(trainer.global_rank, error_line(self.explain(exception) or exception))
        if claim_failure(self.output_dir, trainer.global_rank, line):
            write_status(self.output_dir, FAILED, from_any_rank=True, error=line)


def ranks_line(rank: int, line: str) -> str:
    """The line as every rank reports it: rank 0's as it is, another's with its rank first."""
    return line if rank == 0 else f"rank {rank}: {line}"


def claim_failure(output_dir: Path, rank: int, line: str) -> bool:
    """Put the marker in place, whole, unless another rank did first; whether this rank's failure is the run's.
    A hard link is made only where no file is: the claim and its content come at once."""
    marker = output_dir / FAILED_RANK_FILE
    written = marker.with_name(f"{FAILED_RANK_FILE}.{os.getpid()}")
    written.write_text(f"{rank}\n{line}\n")
    try:
        os.link(written, marker)
    except FileExistsError:
        return False
    finally:
        written.unlink()
    return True


def failure_of_another_rank(output_dir: str | Path) -> RankFailed | None:
    """Within a failing rank: the failure another rank claimed first, if one did (this rank's own error is what
    the loss of that rank caused). The marker stays in the run folder, for a rank whose error comes late; a run
    (re)starting there forgets it."""
    try:
        rank, line = (Path(output_dir) / FAILED_RANK_FILE).read_text().split("\n", 1)
    except (OSError, ValueError):  # no marker: no rank claimed a failure
        return None
    return RankFailed(line.strip()) if int(rank) != process_rank() else None


def forget_rank_failures(output_dir: str | Path) -> None:
    """A run (re)starting in its folder forgets what an earlier attempt's ranks recorded."""
    (Path(output_dir) / FAILED_RANK_FILE).unlink(missing_ok=True)
