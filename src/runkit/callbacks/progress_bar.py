"""How a run shows its progress: Lightning's Rich bar on a terminal, one plain log line per epoch anywhere else.

Which one is decided once, when the run starts (`progress_display`). Off a terminal (a pipe, `| tee`, `nohup`,
a SLURM job's .out file) a bar cannot redraw in place, and each redraw would be another line in the file; there a
run writes one line per epoch instead. On a terminal the bar stays at the bottom: log lines print above it.
Epochs are counted from 1 wherever a person reads them: the last epoch of trainer.max_epochs=5 is `Epoch 5/5`.
"""

import io
import logging
import math
import sys
import time
from collections.abc import Iterator, Mapping
from typing import Any

import lightning.pytorch as pl
from lightning.pytorch.callbacks import ProgressBar, RichProgressBar
from rich import get_console
from rich.console import Console
from rich.progress import BarColumn
from rich.text import Text

from runkit.compat import RichEpochLabel

log = logging.getLogger(__name__)

# Lightning writes why the fit stopped (`Trainer.fit` stopped: `max_epochs=5` reached.) through this logger.
LIGHTNING_INFO_LOGGER = "lightning.pytorch.utilities.rank_zero"


def progress_display(refresh_rate: int = 10) -> ProgressBar:
    """The progress display for this console: a Rich bar that redraws `refresh_rate` times a second on a
    terminal (0: no bar, and no lines either), one line per epoch elsewhere."""
    if refresh_rate > 0 and not on_a_terminal():
        return EpochLines()
    return ThrottledRichProgressBar(refresh_rate=refresh_rate)


def on_a_terminal() -> bool:
    """Whether a bar can redraw in place: Rich's console sees an interactive terminal (or a notebook), and
    stdout, where Rich draws and Hydra's console handler logs, really is one: Rich also says yes to a pipe
    when FORCE_COLOR or TTY_COMPATIBLE is set, as CI services often do."""
    console = Console()
    if console.is_jupyter:
        return True
    return console.is_terminal and not console.is_dumb_terminal and sys.stdout.isatty()


def epoch_label(trainer: pl.Trainer, epoch: int | None = None) -> str:
    """`Epoch 3/5` for the zero-based epoch 2 (the current one by default) of a five-epoch run; `Epoch 3` when
    trainer.max_epochs=-1 sets no limit."""
    number = (trainer.current_epoch if epoch is None else epoch) + 1
    limit = trainer.max_epochs
    return f"Epoch {number}/{limit}" if limit is not None and limit > 0 else f"Epoch {number}"


def losses_first(names: list[str]) -> list[str]:
    """Loss values first (training's, then validation's, then any other), then the rest in the order given."""

    def key(name: str) -> tuple[int, int]:
        if not name.split("/")[-1].removesuffix("_step").endswith("loss"):
            return (1, 0)
        return (0, 0 if name.startswith("train") else 1 if name.startswith("val") else 2)

    return sorted(names, key=key)  # stable: equal keys keep their order


class ThrottledRichProgressBar(RichEpochLabel, RichProgressBar):
    """Lightning's RichProgressBar for a terminal. It counts epochs from 1, shows the values that fit on one line
    (losses first, without the logger's version number), prints log lines above itself, and gathers the values
    it shows only when it can redraw them.

    Lightning's bar redraws `refresh_rate` times a second from a background thread, yet after every training
    batch it gathers its values, one `.item()` each: on a GPU, a wait for the device on every step. This one
    updates after a training batch at most `refresh_rate` times a second, and always after an epoch's last batch,
    so the bar ends on the epoch's final count and values.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.last_update = -math.inf
        self.redirected: list[tuple[logging.StreamHandler, Any]] = []

    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        now = time.monotonic()
        last_batch = batch_idx + 1 >= self.total_train_batches
        if not last_batch and self.refresh_rate > 0 and now - self.last_update < 1 / self.refresh_rate:
            return
        self.last_update = now
        super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)

    def train_label(self, current_epoch: int) -> str:
        # Lightning's own counts from 0 (`Epoch 4/4` for max_epochs=5); padded as Lightning pads it, to the width
        # of the validation bar's label, so the bar does not jump between the two.
        return epoch_label(self.trainer, current_epoch).ljust(len(self.validation_description))

    def get_metrics(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> dict[str, Any]:
        # v_num is the logger's version, shown by Lightning to tell runs apart. trainlab's run folders do that
        # (a sweep job's by the values it varies, which Hydra prints as the job starts); on the bar it is a
        # truncated repeat of a name (`v_num: =0.1`) or an empty field.
        items = super().get_metrics(trainer, pl_module)
        items.pop("v_num", None)
        return self.that_fit({name: items[name] for name in losses_first(list(items))})

    # --- one line, whatever the terminal's width --------------------------------------------------------------
    # Rich lays the bar out as a table whose last column holds the values; given less room than they need, Rich
    # wraps them word by word into a column several lines high. So the bar is narrower on a narrow terminal and
    # shows only the values that fit beside it.

    def configure_columns(self, trainer: pl.Trainer) -> list:
        columns = super().configure_columns(trainer)  # description, bar, count, time, speed
        width = get_console().width
        for column in columns:
            if isinstance(column, BarColumn):
                column.bar_width = bar_width(width)
        return columns if width >= 100 else columns[:4] if width >= 70 else columns[:3]

    def that_fit(self, items: Mapping[str, Any]) -> dict[str, Any]:
        """The first of `items` that fit on the bar's line, as Lightning writes them (`name: value`)."""
        room = self.room_for_values()
        shown = {}
        for name, value in items.items():
            text = value if isinstance(value, str) else f"{value:{self.theme.metrics_format}}"
            room -= len(f"{name}: {text}") + len(self.theme.metrics_text_delimiter)
            if room < 0:
                break
            shown[name] = value
        return shown

    def room_for_values(self) -> int:
        """Columns left for the values beside the widest the bar's other columns get in this run."""
        if self.progress is None:
            return sys.maxsize  # nothing is drawn: nothing to fit
        width = self.progress.console.width
        totals = [self.total_train_batches, self.total_val_batches]
        count = max(len(f"{total}/{total}" if math.isfinite(total) else f"{total}/--") for total in totals)
        labels = [task.description for task in self.progress.tasks if task.visible]
        description = max([len(self.validation_description), *(len(label) for label in labels)])
        # The time column (`0:12:34 • 0:56:07`) up to 99 hours, the speed column (`123.45it/s`) up to 9999/s.
        widths = [description, bar_width(width), count, 19, 11][: len(self.progress.columns) - 1]
        return width - sum(widths) - len(widths) - 1  # a space after each column, and one to spare

    # --- log lines above the bar ------------------------------------------------------------------------------
    # Rich's live display redraws the bar in place: it moves the cursor up over the lines it drew last time. It
    # takes over sys.stdout and sys.stderr while it is up, so that `print` lands above the bar; but logging's
    # handlers hold the streams they were given when logging was set up (Hydra's console handler: stdout). Their
    # lines were written onto the bar's last line, and the next redraw moved up over them and wiped them:
    # Lightning's `Trainer.fit` stopped line, logged as the last epoch ends while the bar is still up, was lost
    # that way, and the bar's top line was left behind as a second copy of it. While the bar is up, handlers
    # that write to a terminal write through Rich's console, which prints each line above the bar.

    def on_sanity_check_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        super().on_sanity_check_start(trainer, pl_module)
        self.print_logs_above_the_bar()

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        super().on_train_start(trainer, pl_module)
        self.print_logs_above_the_bar()

    def on_validation_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        super().on_validation_start(trainer, pl_module)
        self.print_logs_above_the_bar()

    def on_test_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        super().on_test_start(trainer, pl_module)
        self.print_logs_above_the_bar()

    def on_predict_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        super().on_predict_start(trainer, pl_module)
        self.print_logs_above_the_bar()

    def teardown(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        super().teardown(trainer, pl_module, stage)  # stops the bar
        self.restore_log_streams()

    def on_exception(self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException) -> None:
        super().on_exception(trainer, pl_module, exception)
        self.restore_log_streams()

    def print_logs_above_the_bar(self) -> None:
        if self.progress is None or self.redirected or not self.progress.live.is_started:
            return
        if not self.progress.console.is_terminal:  # the bar is drawn once, when it stops: nothing to draw over
            return
        above = LinesAboveTheBar(self.progress.console)
        for handler in terminal_handlers():
            self.redirected.append((handler, handler.setStream(above)))

    def restore_log_streams(self) -> None:
        for handler, stream in self.redirected:
            above = handler.setStream(stream)
            if isinstance(above, LinesAboveTheBar):
                above.write_partial_line()
        self.redirected.clear()


def bar_width(console_width: int) -> int:
    return 40 if console_width >= 160 else 20 if console_width >= 100 else 10


def terminal_handlers() -> Iterator[logging.StreamHandler]:
    """Every logging handler that writes to a terminal (not a file): the root logger's and any other's."""
    loggers = [logging.getLogger(), *list(logging.Logger.manager.loggerDict.values())]
    for logger in loggers:
        for handler in getattr(logger, "handlers", ()):  # the dict also holds placeholders, without handlers
            if isinstance(handler, logging.StreamHandler) and not isinstance(handler, logging.FileHandler):
                stream = handler.stream
                if isinstance(stream, LinesAboveTheBar) or getattr(stream, "isatty", lambda: False)():
                    yield handler


class LinesAboveTheBar(io.TextIOBase):
    """A text stream for logging handlers while the bar is up: Rich's console prints each whole line above it.

    `soft_wrap` leaves a long line to the terminal to wrap, as without a bar, so a path in it stays one line when
    copied. Colours a handler adds are kept (from_ansi).
    """

    def __init__(self, console: Console) -> None:
        super().__init__()
        self.console = console
        self.partial = ""

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return True

    def write(self, text: str) -> int:
        *lines, self.partial = (self.partial + text).split("\n")
        for line in lines:
            self.console.print(Text.from_ansi(line), soft_wrap=True)
        return len(text)

    def write_partial_line(self) -> None:
        """Write out what was left without its newline (the bar is stopping)."""
        if self.partial:
            self.write("\n")


class EpochLines(ProgressBar):
    """Off a terminal: one log line per training epoch, and one per validation that does not end an epoch
    (trainer.val_check_interval) or that `trainer.validate` runs, e.g.

        Epoch 3/5  train/loss 0.3124  val/loss 0.2903  val/acc 0.9121  val/acc_best 0.9121  (4.1 s)

    The values: every epoch loss, training's first, then the other values the model shows on the bar
    (`self.log(..., prog_bar=True)`), epoch values only. Testing and predicting write nothing here: their
    commands say what came out.

    The model logs its training epoch values (train/loss) in its own on_train_epoch_end, which Lightning calls
    after every callback's; so an epoch's line is written when the next thing happens: the next epoch starts,
    the fit ends, or Lightning logs a line of its own (`Trainer.fit` stopped: ..., right after the last epoch).
    """

    def __init__(self) -> None:
        super().__init__()
        self.enabled = True
        self.started = {"epoch": 0.0, "validation": 0.0}
        self.ended: tuple[int, float] | None = None  # the (zero-based) epoch whose line is still to write, its time
        self.batches_done = 0  # in the current epoch

    def disable(self) -> None:
        self.enabled = False  # Lightning's DDP ranks other than 0, and its tuner

    def enable(self) -> None:
        self.enabled = True

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.enabled:
            logging.getLogger(LIGHTNING_INFO_LOGGER).addFilter(self.write_line_first)

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.write_epoch_line()
        self.started["epoch"] = time.monotonic()
        self.batches_done = 0

    def on_train_batch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        self.batches_done = batch_idx + 1

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.enabled:
            self.ended = (trainer.current_epoch, time.monotonic() - self.started["epoch"])

    def on_validation_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.started["validation"] = time.monotonic()

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not self.enabled or trainer.sanity_checking:
            return
        seconds = time.monotonic() - self.started["validation"]
        values = {name: value for name, value in epoch_values(trainer).items() if name.startswith("val")}
        if trainer.state.fn == "validate":
            log.info(value_line("Validation", values, seconds))
        elif self.batches_done < self.total_train_batches:  # within the epoch: the epoch's line comes later
            label = f"{epoch_label(trainer)}, step {trainer.global_step}: validation"
            log.info(value_line(label, values, seconds))

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.stop_watching_lightning()

    def on_exception(self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException) -> None:
        self.stop_watching_lightning()

    def write_line_first(self, record: logging.LogRecord) -> bool:
        """A filter on Lightning's logger: a finished epoch's line comes before the next line of Lightning's."""
        self.write_epoch_line()
        return True

    def stop_watching_lightning(self) -> None:
        self.write_epoch_line()
        logging.getLogger(LIGHTNING_INFO_LOGGER).removeFilter(self.write_line_first)

    def write_epoch_line(self) -> None:
        if self.ended is None:
            return
        epoch, seconds = self.ended
        self.ended = None
        log.info(value_line(epoch_label(self.trainer, epoch), epoch_values(self.trainer), seconds))


def epoch_values(trainer: pl.Trainer) -> dict[str, float]:
    """What an epoch's line shows: every loss, then the model's other bar values; epoch values, not steps'."""
    logged = trainer.callback_metrics
    losses = [name for name in logged if name.split("/")[-1].endswith("loss")]
    shown = losses_first([*losses, *(name for name in trainer.progress_bar_metrics if name not in losses)])
    return {name: float(logged[name]) for name in shown if name in logged and not name.endswith("_step")}


def value_line(label: str, values: Mapping[str, float], seconds: float) -> str:
    shown = "  ".join(f"{name} {value:#.4g}" for name, value in values.items())
    return f"{label}  {shown}  ({seconds:.1f} s)" if shown else f"{label}  ({seconds:.1f} s)"
