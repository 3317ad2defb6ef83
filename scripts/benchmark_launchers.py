"""Time the same short sweep under the basic (sequential) and joblib (parallel) launchers.

    .venv/bin/python scripts/benchmark_launchers.py [--jobs 4] [--n-jobs 2] [--out docs/figures]

Each sweep is a real `trainlab-train -m` over `seed=1..jobs`; wall-clock time includes Python and
torch start-up, as a user sees it. Other load on the machine inflates the times: the script prints the
load average next to them. Writes launcher_benchmark.md and launcher_benchmark.png into --out.
"""

import argparse
import os
import tempfile
from pathlib import Path

from bench.multirun import time_sweep


def write_figure(times: dict[str, float], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(6, 2.6))
    bars = axes.barh(list(times), list(times.values()), color=["#888888", "#3a7dc9"])
    axes.bar_label(bars, labels=[f"{value:.0f} s" for value in times.values()], padding=3)
    axes.set_xlabel("wall-clock seconds for the whole sweep (lower is better)")
    axes.set_title(title, fontsize="medium")
    axes.set_xlim(0, max(times.values()) * 1.2)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=4, help="jobs in the sweep (seeds 1..jobs)")
    parser.add_argument("--n-jobs", type=int, default=2, help="joblib's parallel jobs")
    parser.add_argument("--out", type=Path, default=Path("docs/figures"))
    args = parser.parse_args()
    cores = len(os.sched_getaffinity(0))
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as workdir:
        times = {
            "basic (sequential)": time_sweep("basic", [], args.jobs, Path(workdir)),
            f"joblib, n_jobs={args.n_jobs}": time_sweep(
                "joblib", ["hydra/launcher=joblib", f"hydra.launcher.n_jobs={args.n_jobs}"], args.jobs, Path(workdir)
            ),
        }
    load_after = os.getloadavg()[0]
    note = f"{args.jobs} jobs on {cores} cores; 1-min load average {load_before:.1f} before, {load_after:.1f} after"
    lines = [
        "| launcher | seconds |",
        "|---|---|",
        *(f"| {name} | {value:.1f} |" for name, value in times.items()),
        "",
        note,
    ]
    print("\n".join(lines))
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "launcher_benchmark.md").write_text("\n".join(lines) + "\n")
    write_figure(times, args.out / "launcher_benchmark.png", note)


if __name__ == "__main__":
    main()
