"""A path of the wrong kind, or a folder that cannot be written, is one line naming what was found there and
the fix, with exit code 2, before anything is built or written. Real commands, real files, a real read-only
mount."""

import subprocess
from pathlib import Path

import pytest

from tests.runkit.helpers.faults import can_mount, read_only_mount
from tests.runkit.helpers.process import BIN, run_script
from tests.trainlab.idx import write_layout

QUICK = ["debug=fdr", "extras.print_config=false"]


def refused(command: str, args: list[str], cwd: Path) -> str:
    """The one line a command that must refuse `args` ends with; it must leave no traceback."""
    done = subprocess.run([str(BIN / command), *args], cwd=cwd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 2, done.stderr[-3000:]
    assert "Traceback" not in done.stderr
    return done.stderr.strip().splitlines()[-1]


@pytest.fixture
def a_file(tmp_path: Path) -> Path:
    path = tmp_path / "notes.txt"
    path.write_text("not a folder\n")
    return path


def test_a_folder_given_as_a_checkpoint_names_its_checkpoints(tmp_path: Path) -> None:
    checkpoints = tmp_path / "run" / "checkpoints"
    checkpoints.mkdir(parents=True)
    (checkpoints / "last.ckpt").write_bytes(b"")
    line = refused("trainlab-eval", [f"ckpt_path={checkpoints}"], tmp_path)
    assert line == (
        f"Error: ckpt_path={checkpoints} is a folder, not a checkpoint file; give one of its checkpoints, "
        f"e.g. {checkpoints / 'last.ckpt'}."
    )


def test_a_file_given_as_the_data_folder_is_refused_before_the_data_is_built(tmp_path: Path, a_file: Path) -> None:
    line = refused("trainlab-train", [*QUICK, "data=mnist", f"data.data_dir={a_file}"], tmp_path)
    assert line == f"Error: data.data_dir={a_file} is a file; give a folder (it is made if it does not exist)."


@pytest.mark.parametrize("multirun", [False, True], ids=["run", "sweep"])
def test_a_file_in_the_log_folders_path_is_refused_before_hydra_writes(
    tmp_path: Path, a_file: Path, multirun: bool
) -> None:
    args = ["-m", *QUICK, "seed=1,2"] if multirun else QUICK
    line = refused("trainlab-train", [*args, f"paths.log_dir={a_file}"], tmp_path)
    kind, setting = ("sweep folder", "hydra.sweep.dir") if multirun else ("run folder", "hydra.run.dir")
    assert line.startswith(f"Error: The {kind} {a_file}/")
    assert line.endswith(
        f" lies inside {a_file}, which is a file; set paths.log_dir (or {setting}) to a folder you can write."
    )


NEEDS_MOUNT = pytest.mark.skipif(not can_mount(), reason="needs to mount a read-only tmpfs (root with CAP_SYS_ADMIN)")


@NEEDS_MOUNT
def test_a_log_folder_on_a_read_only_file_system_is_refused_before_any_work(tmp_path: Path) -> None:
    with read_only_mount(tmp_path / "readonly") as mount:
        line = refused("trainlab-train", [*QUICK, f"paths.log_dir={mount / 'logs'}"], tmp_path)
    assert line.startswith(f"Error: The run folder {mount}/logs/")
    assert f"lies in {mount}, which is on a read-only file system; set paths.log_dir" in line


@NEEDS_MOUNT
def test_a_read_only_data_folder_a_download_must_write_is_refused_before_any_work(tmp_path: Path) -> None:
    with read_only_mount(tmp_path / "readonly") as mount:
        line = refused("trainlab-train", [*QUICK, "data=mnist", f"data.data_dir={mount}"], tmp_path)
    assert line == (
        f"Error: MNIST must be downloaded into {mount}/MNIST/raw, which cannot be written (Read-only file system); "
        "set data.data_dir to a folder you can write, or put the four IDX files (raw or .gz) there and set "
        "data.download=false."
    )
    assert not [path for path in tmp_path.rglob("logs/**/*") if path.is_file()]  # no run was started


@NEEDS_MOUNT
@pytest.mark.slow  # a whole training run (~10 s)
def test_data_already_on_a_read_only_file_system_trains(tmp_path: Path) -> None:
    """Reading needs no write: a shared read-only copy of the data is what many clusters give."""
    with read_only_mount(tmp_path / "readonly", fill=lambda folder: write_layout(folder, "mnist")) as mount:
        args = [*QUICK, "data=mnist", f"data.data_dir={mount}", "data.num_val=40", f"hydra.run.dir={tmp_path / 'run'}"]
        done = run_script("train", args, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]


@NEEDS_MOUNT
def test_packed_files_on_a_read_only_file_system_say_they_must_be_unpacked(tmp_path: Path) -> None:
    from trainlab.data.vision import MNISTFamilyDataModule

    with (
        read_only_mount(tmp_path / "readonly", fill=lambda folder: write_layout(folder, "mnist", packed=True)) as mount,
        pytest.raises(ValueError) as error,
    ):
        MNISTFamilyDataModule(data_dir=str(mount), download=False)
    raw = mount / "MNIST" / "raw"
    assert str(error.value) == (
        f"{raw}/train-images-idx3-ubyte.gz must be unpacked beside it, but {raw} cannot be written (Read-only file "
        "system); unpack it there (gunzip -k), or copy the files to a folder you can write and set data.data_dir to it."
    )
