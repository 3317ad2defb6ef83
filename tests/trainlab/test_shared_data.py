"""A datamodule given a shared folder maps one copy of its data, saved there once for every job that asks."""

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from trainlab.data.shared import shared_data
from trainlab.data.synthetic import SyntheticImagesDataModule

SMALL = {"num_train": 300, "num_val": 50, "num_test": 50}


def datamodule(shared_dir: Path | None, **settings) -> SyntheticImagesDataModule:
    module = SyntheticImagesDataModule(**{**SMALL, "seed": 3, **settings})
    module.shared_dir = shared_dir
    return module


def test_a_shared_datamodule_serves_the_same_tensors_mapped_from_one_file(tmp_path: Path) -> None:
    built = datamodule(None)
    built.setup()
    shared = datamodule(tmp_path / "shared_data")
    shared.setup()
    assert built.splits.keys() == shared.splits.keys()
    for name, tensors in built.splits.items():
        assert all(torch.equal(a, b) for a, b in zip(tensors, shared.splits[name], strict=True))
    saved = list((tmp_path / "shared_data").glob("*.pt"))
    assert len(saved) == 1
    # What the module learnt from the data comes with it: the pixel statistics predictions are standardised by.
    assert datamodule(tmp_path / "shared_data").pixel_normalization() == built.pixel_normalization()


MAPS = Path("/proc/self/maps")  # the process's mapped files: Linux's /proc only


@pytest.mark.skipif(not MAPS.is_file(), reason=f"lists the process's mapped files from {MAPS}, which only Linux has")
def test_the_shared_file_is_mapped_not_read_into_a_copy(tmp_path: Path) -> None:
    shared = datamodule(tmp_path / "shared_data")
    shared.setup()
    (saved,) = (tmp_path / "shared_data").glob("*.pt")
    # The process maps the file, rather than holding a copy read from it.
    assert str(saved) in MAPS.read_text()


def test_the_data_are_built_once_for_every_job_that_asks_for_them(tmp_path: Path) -> None:
    builds = []

    def build() -> dict:
        builds.append(1)
        return {"train": [torch.arange(6.0), torch.arange(6)]}

    first = shared_data(tmp_path, "key", build)
    second = shared_data(tmp_path, "key", build)
    assert len(builds) == 1
    assert torch.equal(first["train"][0], second["train"][0])


def test_jobs_share_data_only_when_their_data_settings_agree(tmp_path: Path) -> None:
    key = datamodule(None).data_key()
    assert datamodule(None, batch_size=32, eval_batch_size=500).data_key() == key  # loader settings only
    assert datamodule(None, seed=4).data_key() != key
    assert datamodule(None, num_train=301).data_key() != key
    assert datamodule(None, num_folds=5, fold=1).data_key() != key


# A job that starts saving the shared data and is killed in the middle of the write: it blocks inside torch.save,
# after the file was opened, and says so by creating `writing`.
KILLED_WHILE_SAVING = """
import sys, time
from pathlib import Path
import torch
from trainlab.data.shared import shared_data

class BlockWhileSaved:
    def __reduce__(self):
        Path(sys.argv[3]).touch()
        time.sleep(3600)

shared_data(Path(sys.argv[1]), sys.argv[2], lambda: {"x": torch.arange(1000), "block": BlockWhileSaved()})
"""


def test_a_job_killed_while_saving_the_shared_data_leaves_the_next_job_a_whole_file(tmp_path: Path) -> None:
    folder, writing = tmp_path / "shared_data", tmp_path / "writing"
    job = subprocess.Popen([sys.executable, "-c", KILLED_WHILE_SAVING, str(folder), "key", str(writing)])
    try:
        while not writing.exists():  # waits for the job to be inside torch.save, however long that takes
            assert job.poll() is None, "the job ended before it started saving"
            time.sleep(0.05)
        job.send_signal(signal.SIGKILL)
    finally:
        job.wait()
    assert list(folder.glob("key.pt.*.partial")), "the killed job was writing its partial file"
    assert not (folder / "key.pt").exists()  # never a half-written file under the name jobs map
    data = shared_data(folder, "key", lambda: {"x": torch.arange(10)})  # the next job rebuilds it
    assert torch.equal(data["x"], torch.arange(10))
    assert sorted(path.name for path in folder.iterdir()) == ["key.lock", "key.pt"]  # the stale partial is gone
