"""A disk that is full, or a record that cannot be written, wherever the run writes: one line naming the file or
folder, a non-zero exit, no traceback, and nothing the run had written before lost. Real tmpfs mounts that
really fill (root only), real trainlab-train processes."""

from pathlib import Path

import pytest
import torch

from runkit.config.errors import ResourceError
from runkit.runs.status import read_status
from runkit.training import run
from tests.runkit.helpers.config import compose_config
from tests.runkit.helpers.faults import can_mount, fill_disk, small_disk
from tests.runkit.helpers.process import run_script
from tests.runkit.helpers.runs import TINY_MLP

NEEDS_MOUNT = pytest.mark.skipif(not can_mount(), reason="needs root allowed to mount a tmpfs that really fills")


def one_error_line(stderr: str) -> str:
    assert "Traceback" not in stderr, stderr[-3000:]
    errors = [line for line in stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, stderr[-3000:]
    return errors[0]


@NEEDS_MOUNT
@pytest.mark.slow  # a whole trainlab-train process per case (~8 s)
@pytest.mark.parametrize(
    ("setting", "written"),
    [
        ("logger.tensorboard.save_dir={disk}", "the file events.out.tfevents."),
        ("hydra.job_logging.handlers.file.filename={disk}/train.log", "the log file train.log"),
    ],
    ids=["tensorboard", "log-file"],
)
def test_a_full_disk_under_a_logger_or_the_log_file_is_one_line(tmp_path: Path, setting: str, written: str) -> None:
    run_dir = tmp_path / "run"
    with small_disk(tmp_path / "disk") as disk:
        fill_disk(disk, leave=0)
        args = [*TINY_MLP, "trainer.max_epochs=2", f"hydra.run.dir={run_dir}", setting.format(disk=disk)]
        done = run_script("train", args, cwd=tmp_path)
    assert done.returncode == 2, done.stderr[-3000:]
    line = one_error_line(done.stderr)
    assert line.startswith(f"Error: The disk of {disk} is full: {written}")
    assert line.endswith("free space there, or write the run to another disk with paths.log_dir=<folder>.")
    assert read_status(run_dir) == {"status": "failed", "error": line.removeprefix("Error: ")}


@NEEDS_MOUNT
def test_a_run_folder_on_a_full_disk_is_refused_before_hydra_writes(tmp_path: Path) -> None:
    with small_disk(tmp_path / "disk") as disk:
        fill_disk(disk, leave=0)
        done = run_script("train", [*TINY_MLP, f"paths.log_dir={disk / 'logs'}"], cwd=tmp_path)
        left = [path.name for path in disk.iterdir()]
    assert done.returncode == 2
    line = one_error_line(done.stderr)
    assert line.startswith(f"Error: The run folder {disk}/logs/")
    assert line.endswith(
        f"lies in {disk}, which is on a full disk (0 KiB free); set paths.log_dir (or hydra.run.dir) to a folder you can write."
    )
    assert left == ["filler"]


def test_a_status_that_cannot_be_written_says_how_the_run_ended(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    fault = [
        "+callbacks.fault._target_=tests.runkit.helpers.faults.StatusBecomesAFolder",
        f"+callbacks.fault.run_dir={run_dir}",
    ]
    cfg = compose_config("train", [*TINY_MLP, "logger=none", "trainer.max_epochs=1", *fault], run_dir)
    with pytest.raises(ResourceError) as error:
        run(cfg)
    assert str(error.value) == (
        f"The run finished, but {run_dir / 'status.yaml'} could not be written to say so (Is a directory)."
    )
    assert torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)["epoch"] == 0  # whole


def test_a_status_that_cannot_be_written_at_the_start_stops_the_run_before_training(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    (run_dir / "status.yaml").mkdir(parents=True)
    cfg = compose_config("train", [*TINY_MLP, "logger=none", "trainer.max_epochs=1"], run_dir)
    with pytest.raises(ResourceError) as error:
        run(cfg)
    assert (
        str(error.value) == f"The run did not start: {run_dir / 'status.yaml'} could not be written (Is a directory)."
    )
    assert not (run_dir / "checkpoints").exists()
