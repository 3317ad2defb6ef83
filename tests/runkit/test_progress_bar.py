"""How a run shows its progress. On a terminal, the bar gathers the values it shows only when it can redraw them
(and always at an epoch's end), keeps to one line, and lets log lines print above it; elsewhere a run writes one
line per epoch. Epochs are counted from 1 everywhere."""

import logging
import re
from pathlib import Path

import pytest

from runkit.building import build_datamodule, build_loggers, build_model, build_trainer
from runkit.callbacks import progress_bar
from runkit.callbacks.progress_bar import EpochLines, ThrottledRichProgressBar
from tests.runkit.helpers.config import compose_config
from tests.runkit.helpers.process import run_script
from tests.runkit.helpers.runs import TINY_MLP
from tests.runkit.helpers.terminal import run_in_terminal, screen_lines

# The default run, shortened: 4 training batches an epoch.
TWO_EPOCHS = ["trainer.max_epochs=2", "data.num_train=512", "data.num_val=128", "data.num_test=128"]
LOG_LINE = re.compile(r"\[\d{4}-\d\d-\d\d [\d:,]+\]\[[\w.]+\]\[[A-Z]+\] - ")
BAR_LINE = re.compile(r"(Epoch \d+/\d+|Sanity Checking|Validation|Testing) +━")


class RecordingBar(ThrottledRichProgressBar):
    """Records the values the bar gathered to show, and after which training batch."""

    def __init__(self) -> None:
        super().__init__(refresh_rate=10)
        self.batch: tuple[int, int] | None = None
        self.shown: list[tuple[int, int, dict]] = []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.batch = (trainer.current_epoch, batch_idx)
        super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)
        self.batch = None

    def get_metrics(self, trainer, pl_module) -> dict:
        values = super().get_metrics(trainer, pl_module)
        if self.batch is not None:  # gathered after a training batch, not after validation
            self.shown.append((*self.batch, values))
        return values


def test_the_bar_skips_batches_between_redraws_and_shows_each_epochs_last(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A clock that stands still: every batch falls within the same tenth of a second.
    monkeypatch.setattr(progress_bar.time, "monotonic", lambda: 1000.0)
    monkeypatch.setenv("COLUMNS", "200")  # room on the bar's line for every value
    overrides = [*TINY_MLP, "trainer.log_every_n_steps=1", "trainer.max_epochs=2", "trainer.accelerator=cpu"]
    cfg = compose_config("train", overrides, tmp_path / "run")
    datamodule = build_datamodule(cfg.data)
    bar = RecordingBar()
    trainer = build_trainer(cfg.trainer, [bar], build_loggers(cfg.logger))
    trainer.fit(build_model(cfg), datamodule=datamodule)
    # 256 samples in batches of 32: 8 batches an epoch. Drawn: the run's first batch, then each epoch's last.
    assert [(epoch, batch) for epoch, batch, _ in bar.shown] == [(0, 0), (0, 7), (1, 7)]
    last_values = bar.shown[-1][2]
    assert {"val/loss", "val/acc"} <= set(last_values)  # the bar ends showing the latest validation too
    assert last_values["train/loss_step"] == pytest.approx(float(trainer.callback_metrics["train/loss_step"]))


def test_off_a_terminal_each_epoch_is_one_line_and_so_is_a_validation_within_one(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    overrides = [*TINY_MLP, "trainer.max_epochs=2", "trainer.accelerator=cpu", "+trainer.val_check_interval=0.5"]
    cfg = compose_config("train", overrides, tmp_path / "run")
    trainer = build_trainer(cfg.trainer, [EpochLines()], build_loggers(cfg.logger))
    with caplog.at_level(logging.INFO, logger=progress_bar.__name__):
        trainer.fit(build_model(cfg), datamodule=build_datamodule(cfg.data))
    lines = [record.getMessage() for record in caplog.records if record.name == progress_bar.__name__]
    # 8 batches an epoch, validated after 4 and 8: the end-of-epoch validation is on the epoch's line.
    shapes = [re.sub(r"\d+\.\d+", "x", line) for line in lines]
    assert shapes == [
        "Epoch 1/2, step 4: validation  val/loss x  val/acc x  val/acc_best x  (x s)",
        "Epoch 1/2  train/loss x  val/loss x  val/acc x  val/acc_best x  (x s)",
        "Epoch 2/2, step 12: validation  val/loss x  val/acc x  val/acc_best x  (x s)",
        "Epoch 2/2  train/loss x  val/loss x  val/acc x  val/acc_best x  (x s)",
    ]
    # The epoch's own training loss (the model logs it after every callback's epoch-end hook), not the last one's.
    assert f"train/loss {float(trainer.callback_metrics['train/loss']):#.4g}" in lines[-1]


@pytest.mark.slow  # two runs: ~20 s
def test_a_piped_run_writes_one_line_per_epoch_and_a_resumed_one_counts_on(tmp_path: Path) -> None:
    """`| tee`, `nohup`, a SLURM job's .out file: no bar, whatever FORCE_COLOR says (CI services set it)."""
    env = {"FORCE_COLOR": "1"}
    first = run_script("train", [*TWO_EPOCHS, f"paths.log_dir={tmp_path}"], cwd=tmp_path, env=env)
    assert first.returncode == 0, first.stderr[-3000:]
    (run,) = (tmp_path / "train" / "runs").iterdir()
    more = ["trainer.max_epochs=3", "ckpt_path=last", f"hydra.run.dir={run}"]
    resumed = run_script("train", [*TWO_EPOCHS, *more], cwd=tmp_path, env=env)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    for result in (first, resumed):
        text = result.stdout + result.stderr
        assert "━" not in text and "\r" not in text and "\x1b" not in text  # no bar, no redraws, no colours
    said = [LOG_LINE.sub("", line) for line in first.stdout.splitlines()]
    epochs = [line for line in said if line.startswith("Epoch")]
    assert [line.split("  ")[0] for line in epochs] == ["Epoch 1/2", "Epoch 2/2"]
    values = r"  train/loss \S+  val/loss \S+  val/acc \S+  val/acc_best \S+  \(\d+\.\d s\)"
    assert all(re.fullmatch(r"Epoch \d/2" + values, line) for line in epochs), epochs  # one line, losses first
    # Lightning says why the fit stopped after the last epoch's line, not before it.
    assert said.index("`Trainer.fit` stopped: `max_epochs=2` reached.") == said.index(epochs[-1]) + 1
    said = [LOG_LINE.sub("", line) for line in resumed.stdout.splitlines()]
    start = said.index("Resuming after epoch 2 of 3 (step 8).")
    assert [line.split("  ")[0] for line in said[start:] if line.startswith("Epoch")] == ["Epoch 3/3"]


@pytest.mark.slow  # a run in a terminal: ~12 s each
@pytest.mark.parametrize("columns", [120, 80])
def test_on_a_terminal_log_lines_print_above_the_bar_and_the_bar_keeps_to_one_line(
    columns: int, tmp_path: Path
) -> None:
    raw = run_in_terminal("train", [*TWO_EPOCHS, f"paths.log_dir={tmp_path}"], cwd=tmp_path, columns=columns)
    lines = [line for line in screen_lines(raw, columns) if line]
    # Each line is a log line or a bar: none written onto another, no value wrapped onto a line of its own.
    for line in lines:
        assert LOG_LINE.match(line) and "━" not in line or BAR_LINE.match(line), "\n".join(lines)
    stopped = [line for line in lines if "`Trainer.fit` stopped" in line]
    assert len(stopped) == 1 and stopped[0].endswith("] - `Trainer.fit` stopped: `max_epochs=2` reached."), lines
    # The last epoch's bar is left, once, counted from 1, with values beside it even at 80 columns.
    bars = [line for line in lines if line.startswith("Epoch")]
    assert len(bars) == 1 and bars[0].startswith("Epoch 2/2 ") and "val/loss: " in bars[0], lines
    assert all(len(line) <= columns for line in lines if BAR_LINE.match(line))
    assert lines[-1].endswith(f"--logdir {next((tmp_path / 'train' / 'runs').iterdir())}")


def test_no_progress_display_means_none_at_all(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """callbacks.progress_bar=null: no bar and no lines, not Lightning's own tqdm bar in their place."""
    cfg = compose_config("train", [*TINY_MLP, "trainer.max_epochs=1", "trainer.accelerator=cpu"], tmp_path / "run")
    trainer = build_trainer(cfg.trainer, [], build_loggers(cfg.logger))
    trainer.fit(build_model(cfg), datamodule=build_datamodule(cfg.data))
    assert trainer.progress_bar_callback is None
    assert "it/s" not in capsys.readouterr().err
