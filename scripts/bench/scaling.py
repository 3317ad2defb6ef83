"""Section `scaling`: how the costs of a run grow with its data and its sweep.

1. One run of the default CNN on synthetic images at 10k, 60k and 600k training samples, each in a
   process of its own (scripts/benchmark_scaling.py --one-run N), so that each peak memory is its own:
   the time to build the data, the time of one epoch (its validation included), the bytes of the data
   and the process's peak resident memory.
2. Joblib multiruns of 4 and 8 jobs (2 at a time) on the same 60k images: wall time and the peak
   memory of all the sweep's processes together, with the jobs sharing one copy of the data (the
   default) and, for 4 jobs, with each job building its own (`extras.share_data=false`).
"""

import json
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from bench.common import BIN, ROOT, Results, Run
from bench.fits import template_fit, template_setup
from runkit.process.setup import stop_gpu_probes_without_gpus

SIZES = (10_000, 60_000, 600_000)
SWEEP_IMAGES = 60_000
ONE_RUN_SCRIPT = ROOT / "scripts" / "benchmark_scaling.py"  # the child's entry point: `--one-run N`


def measure(run: Run) -> Results:
    """The section in the table: its own temporary folder and fixed sizes (--repeats, --num-train and
    --quick do not apply)."""
    return {"scaling": scaling_results()}


def scaling_results() -> Results:
    """Runs at each size, then the sweeps; the growth from the smallest run to the largest."""
    runs = {f"{size // 1000}k": run_at_size(size) for size in SIZES}
    small, large = runs["10k"], runs["600k"]
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        sweeps = {
            "4_jobs_shared": sweep(4, True, workdir),
            "8_jobs_shared": sweep(8, True, workdir),
            "4_jobs_each_own_copy": sweep(4, False, workdir),
        }
    return {
        "runs": runs,
        "epoch_growth_10k_to_600k": round(large["epoch_s"] / small["epoch_s"], 1),  # the work grows 60x
        "rss_growth_mb_per_data_mb": round(
            (large["peak_rss_mb"] - small["peak_rss_mb"]) / (large["data_mb"] - small["data_mb"]), 2
        ),
        "sweep_images": SWEEP_IMAGES,
        "joblib_sweeps_2_at_a_time": sweeps,
    }


# --- 1. one run at each size -------------------------------------------------------------------
def one_run(num_train: int) -> Results:
    """In this process: build the data, fit one epoch; what it took and the peak memory (run as a child)."""
    stop_gpu_probes_without_gpus()  # as trainlab-train does
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        cfg, datamodule = template_setup(Path(tmp), num_train, batch_size=128, epochs=1)
        build_s = time.perf_counter() - start
        data_bytes = sum(t.nbytes for split in datamodule.splits.values() for t in split)
        epochs = template_fit(cfg, datamodule).epochs
    return {
        "build_data_s": round(build_s, 2),
        "epoch_s": round(epochs[0], 2),
        "data_mb": round(data_bytes / 1e6),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e3),  # KiB on Linux
    }


def run_at_size(num_train: int) -> Results:
    """`one_run` in a child process, whose last line of output is its JSON."""
    out = subprocess.run(
        [sys.executable, str(ONE_RUN_SCRIPT), "--one-run", str(num_train)], capture_output=True, text=True, check=True
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


# --- 2. sweeps -----------------------------------------------------------------------------------
def tree_memory_mb(root: int) -> tuple[float, float]:
    """(RSS, PSS) in MB summed over `root` and its descendants: PSS counts a shared page once in all."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    rss = pss = 0.0
    todo = [root]
    while todo:
        pid = todo.pop()
        todo += children.get(pid, [])
        try:
            rollup = Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()
        except OSError:
            continue
        values = {line.split()[0]: float(line.split()[1]) for line in rollup[1:]}
        rss += values.get("Rss:", 0) / 1e3
        pss += values.get("Pss:", 0) / 1e3
    return rss, pss


def sweep_command(jobs: int, share: bool, workdir: Path) -> list[str]:
    """A joblib multirun of `jobs` learning rates on the same images, 2 jobs at a time, one epoch each."""
    rates = ",".join(f"{0.001 * (job + 1):.3f}" for job in range(jobs))
    return [
        str(BIN / "trainlab-train"),
        "-m",
        "hydra/launcher=joblib",
        "hydra.launcher.n_jobs=2",
        f"optimizer.lr={rates}",
        f"data.num_train={SWEEP_IMAGES}",
        "trainer.max_epochs=1",
        "trainer.accelerator=cpu",
        "test=false",
        "logger=none",
        "extras.print_config=false",
        f"extras.share_data={str(share).lower()}",
        "callbacks.progress_bar=null",
        "callbacks.model_summary=null",
        f"hydra.sweep.dir={workdir / f'sweep_{jobs}_{share}'}",
        f"paths.log_dir={workdir / 'logs'}",
    ]


def sweep(jobs: int, share: bool, workdir: Path) -> Results:
    """The sweep's wall time, and the peak memory of its processes, sampled twice a second from a thread."""
    command = sweep_command(jobs, share, workdir)
    peak = {"rss": 0.0, "pss": 0.0}
    start = time.perf_counter()
    process = subprocess.Popen(command, cwd=workdir, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    done = threading.Event()

    def watch() -> None:
        while not done.wait(0.5):
            rss, pss = tree_memory_mb(process.pid)
            peak["rss"], peak["pss"] = max(peak["rss"], rss), max(peak["pss"], pss)

    watcher = threading.Thread(target=watch)
    watcher.start()
    _, stderr = process.communicate()
    seconds = time.perf_counter() - start
    done.set()
    watcher.join()
    if process.returncode != 0:
        sys.exit(f"The {jobs}-job sweep failed:\n{stderr[-3000:]}")
    return {"wall_s": round(seconds, 1), "peak_rss_mb": round(peak["rss"]), "peak_pss_mb": round(peak["pss"])}
