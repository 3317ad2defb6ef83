"""A real multirun shared by the sweep and summary tests: two learning rates that train and one that fails, two seeds each."""

from pathlib import Path

import pytest

from runkit.runs.names import JOB_NUMBER_WIDTH
from tests.runkit.helpers.process import run_script
from tests.runkit.helpers.runs import TINY_MLP

TINY_RUN = TINY_MLP

# optimizer.lr=-1 fails config validation inside the job: a deliberate failure.
SEED_SWEEP = ["optimizer=sgd", "optimizer.lr=0.05,0.2,-1", "seed=1,2", "trainer.max_epochs=2"]


@pytest.fixture(scope="session")
def seed_sweep(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """The multirun folder of SEED_SWEEP (six jobs, two of them failing) and the command's output."""
    root = tmp_path_factory.mktemp("seed_sweep")
    sweep_dir = root / "multirun"
    result = run_script(
        "train",
        ["-m", *TINY_RUN, *SEED_SWEEP, f"hydra.sweep.dir={sweep_dir}", f"paths.log_dir={root / 'logs'}"],
        cwd=root,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return sweep_dir, result.stdout + result.stderr


def job_dirs(sweep_dir: Path) -> dict[int, Path]:
    """A sweep folder's job folders so far, by job number: `003_seed-2` is job 3's."""
    folders = [path for path in sweep_dir.iterdir() if path.is_dir()] if sweep_dir.is_dir() else []
    return {int(path.name.split("_")[0]): path for path in folders if path.name.split("_")[0].isdigit()}


def job_dir(sweep_dir: Path, number: int) -> Path:
    """Job `number`'s folder: its number padded to JOB_NUMBER_WIDTH digits, then what the sweep varies."""
    folder = job_dirs(sweep_dir)[number]
    assert folder.name.split("_")[0] == f"{number:0{JOB_NUMBER_WIDTH}d}", folder
    return folder
