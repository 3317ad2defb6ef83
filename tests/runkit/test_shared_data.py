"""A parallel sweep's jobs on the same data map one copy of it, saved once in the sweep folder."""

from pathlib import Path

import pytest

from tests.runkit.helpers.process import run_script
from tests.runkit.helpers.runs import TINY_MLP
from tests.runkit.helpers.sweeps import job_dir


@pytest.mark.slow
def test_a_parallel_sweep_builds_its_data_once_and_removes_it_at_the_end(tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"
    args = [
        "-m",
        "hydra/launcher=joblib",
        "hydra.launcher.n_jobs=2",
        "optimizer.lr=0.001,0.002,0.003",  # one dataset for the three jobs
        *TINY_MLP,
        "trainer.max_epochs=1",
        "test=false",
        f"hydra.sweep.dir={sweep}",
        f"paths.log_dir={tmp_path / 'logs'}",
    ]
    result = run_script("train", args, tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "3 jobs: 3 ok" in result.stdout
    logs = [(job_dir(sweep, job) / "train.log").read_text() for job in range(3)]
    assert sum(log.count("Data saved for the sweep's other jobs") for log in logs) == 1
    assert not (sweep / "shared_data").exists()
