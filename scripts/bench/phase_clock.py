"""A Lightning callback that only reads the clock: when a `trainlab-train` run's first training batch starts,
when each validation loop starts and ends, when the fit ends and when the test ends. The `whole` section adds
it to a separate breakdown-only run (never to a timed one), to split that run's time into its phases:

    PYTHONPATH=scripts trainlab-train ... +callbacks.phase_clock._target_=bench.phase_clock.PhaseClock \
        +callbacks.phase_clock.path=marks.json

The marks are wall-clock times (time.time()), so that the process that started the run can set them against
the moment it started it. Lightning runs the checkpoint callbacks after every other one, so a validation loop
ends here before its checkpoint is written: the writing counts as training time.
"""

import json
import time
from pathlib import Path

import lightning.pytorch as pl
from lightning.pytorch.callbacks import Callback


class PhaseClock(Callback):
    """Records the marks (see the module's docstring); writes them to `path` as JSON when the fit and the test end."""

    def __init__(self, path: str) -> None:
        self.path = Path(path)
        self.marks: dict[str, float] = {}
        self.validations: list[list[float]] = []  # [start, end] of each validation loop, the sanity check's apart

    def on_train_batch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: object, i: int) -> None:
        self.marks.setdefault("first_batch", time.time())

    def on_validation_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not trainer.sanity_checking:
            self.validations.append([time.time()])

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not trainer.sanity_checking:
            self.validations[-1].append(time.time())

    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.marks["fit_end"] = time.time()
        self.write()

    def on_test_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.marks["test_end"] = time.time()
        self.write()

    def write(self) -> None:
        self.path.write_text(json.dumps({**self.marks, "validations": self.validations}) + "\n")
