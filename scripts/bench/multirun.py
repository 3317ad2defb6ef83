"""Section `multirun`: the same short sweep of 4 CNN jobs under Hydra's basic (sequential) launcher and
the joblib (parallel) one, alternating, where the joblib launcher is installed.

`time_sweep` is also what scripts/benchmark_launchers.py times, with its own number of jobs.
"""

import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import BIN, Results, Run, alternate, median_of

# A small CNN on synthetic digits, long enough per job that start-up does not dominate.
JOB = [
    "data=synthetic_images",
    "model=cnn",
    "data.num_train=3000",
    "data.num_val=500",
    "data.num_test=500",
    "trainer.max_epochs=2",
    "trainer.accelerator=cpu",
    "trainer.devices=1",
    "logger=none",
    "extras.print_config=false",
    "callbacks.progress_bar=null",
    "callbacks.model_summary=null",
]
LAUNCHERS = {"joblib": ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"], "basic": ["hydra/launcher=basic"]}
JOBS = 4


def measure(run: Run) -> Results:
    """Medians over the repeats and their ratio; not measured (None) without the joblib launcher."""
    if not joblib_installed():
        return {"multirun_4_jobs": None}
    joblib_s, basic_s = alternate(
        lambda: multirun("joblib", run.workdir), lambda: multirun("basic", run.workdir), run.repeats
    )
    return {
        "multirun_4_jobs": {
            "joblib_s": round(median_of(joblib_s), 1),
            "basic_s": round(median_of(basic_s), 1),
            "ratio_joblib_over_basic": round(median_of(joblib_s) / median_of(basic_s), 3),
        }
    }


def joblib_installed() -> bool:
    """Whether Hydra's joblib launcher plugin can be imported: it is an optional dependency."""
    try:
        import hydra_plugins.hydra_joblib_launcher  # noqa: F401
    except ImportError:
        return False
    return True


def multirun(launcher: str, cwd: Path) -> float:
    """One sweep of JOBS jobs under this launcher, in a fresh folder of its own."""
    return time_sweep(launcher, LAUNCHERS[launcher], jobs=JOBS, workdir=Path(tempfile.mkdtemp(dir=cwd)))


def time_sweep(name: str, launcher: list[str], jobs: int, workdir: Path) -> float:
    """Seconds one `trainlab-train -m` of `jobs` seeds takes with these launcher overrides, start-up included,
    as a user sees it."""
    seeds = ",".join(str(seed) for seed in range(1, jobs + 1))
    command = [
        str(BIN / "trainlab-train"),
        "-m",
        *launcher,
        *JOB,
        f"seed={seeds}",
        f"hydra.sweep.dir={workdir / name}",
        f"paths.log_dir={workdir / 'logs'}",
    ]
    start = time.perf_counter()
    result = subprocess.run(command, cwd=workdir, capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"The {name} sweep failed:\n{result.stderr[-3000:]}")
    return time.perf_counter() - start
