"""A real multirun shared by the sweep and summary tests: two learning rates that train and one that fails, two seeds each."""

from pathlib import Path

import pytest

from tests.helpers.process import run_script
from tests.helpers.runs import TINY_MLP

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
