"""A DDP rank other than 0 that fails (out of memory on its GPU, say) records why, for the whole run.

Rank 0 writes the run's status.yaml, but it cannot see another rank's error: it sees a lost connection
("Connection closed by peer"), or nothing at all while it waits in an NCCL all-reduce. And Lightning's launcher
SIGKILLs rank 0 within 5 s of another rank's exit with a non-zero code, so rank 0 may never get to record
anything. So the failing rank records the failure itself, from Lightning's on_exception hook, before its
connections close: status.yaml says `failed` with its one line, and a marker file beside it tells rank 0 that
the failure it meets next is that one. Rank 0 then ends with the same record, and the one line on the console is
the failing rank's own.
"""

from collections.abc import Callable
from pathlib import Path

import lightning.pytorch as pl
from lightning.pytorch.callbacks import Callback

from runkit.callbacks.optuna_trial import TrialPruned
from runkit.config.errors import RankFailed
from runkit.process.mode import process_rank
from runkit.runs.status import FAILED, error_line, write_status

FAILED_RANK_FILE = ".failed_rank"  # in the run folder: the failing rank's line, while the run's ranks end


class RecordRankFailure(Callback):
    """On a rank other than 0, an error records the run as failed with that rank's line, and tells rank 0."""

    def __init__(self, output_dir: str, explain: Callable[[BaseException], Exception | None] = lambda _: None) -> None:
        self.output_dir = Path(output_dir)
        self.explain = explain  # the error as the run reports it, where it differs (out of memory: what to change)

    def on_exception(self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException) -> None:
        if trainer.global_rank == 0 or not isinstance(exception, Exception) or isinstance(exception, TrialPruned):
            return  # rank 0 records its own end; interruptions and a pruned trial end every rank alike
        line = f"rank {trainer.global_rank}: {error_line(self.explain(exception) or exception)}"
        write_status(self.output_dir, FAILED, from_any_rank=True, error=line)
        (self.output_dir / FAILED_RANK_FILE).write_text(line + "\n")


def other_rank_failure(output_dir: str | Path) -> RankFailed | None:
    """On rank 0: the failure another rank recorded in this run, if one did."""
    marker = Path(output_dir) / FAILED_RANK_FILE
    if process_rank() > 0 or not marker.is_file():
        return None
    line = marker.read_text().strip()
    marker.unlink(missing_ok=True)  # the run ends with it; a resumed run starts without it
    return RankFailed(line)


def forget_rank_failures(output_dir: str | Path) -> None:
    """A run (re)starting in its folder forgets what an earlier attempt's ranks recorded."""
    (Path(output_dir) / FAILED_RANK_FILE).unlink(missing_ok=True)
