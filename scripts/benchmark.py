"""Measure what the template costs: `make bench` (or `.venv/bin/python scripts/benchmark.py`).

Runs, in one process, side by side and alternating (A B A B ...), medians over repeats, the sections of
bench/sections.py in this order (one module each in scripts/bench/):
  epoch      the same CNN on the same in-memory data for three epochs, by a hand-written PyTorch loop and
             through trainlab's LightningModule + DataModule + Trainer as configured by default (and, for
             reference, through a bare Lightning Trainer): the steady epoch time (epochs 2-3) and the whole
             fit; then start-up: process start to first training step, and `trainlab-train debug=fdr` to exit;
  data       building the synthetic_images training set and streaming one epoch of batches;
  accuracy   time to accuracy of `experiment=mnist_cnn`, seeds 1-3, 32-bit and trainer=bf16, on MNIST-sized
             synthetic images and on the official MNIST files when they are in data/MNIST/raw;
  multirun   a 4-job multirun with the joblib launcher against the basic one, where joblib is installed;
  precision  bfloat16 mixed precision against 32-bit, for the hand-written loop and the template, with the
             accuracy each reaches;
  search     a 12-trial Optuna search of the CNN's learning rate and width on synthetic images, without and
             with a pruner: wall time and best val/acc of each;
  scaling    how costs grow: epoch time and peak memory at 10k, 60k and 600k images, and joblib sweeps of 4
             and 8 jobs sharing their data or not (also `scripts/benchmark_scaling.py` alone).
`--only NAME[,NAME]` runs those sections alone (`--only epoch`, `--only search,precision`).
Writes benchmarks/results.json and benchmarks/results.md (`--only` updates its own sections there).
"""

import argparse
import json
import os
import platform
import tempfile
from pathlib import Path

import torch

from bench.common import ROOT, Results, Run
from bench.sections import SECTIONS, measure_sections
from trainlab.process.setup import stop_gpu_probes_without_gpus

QUICK_REPEATS, QUICK_NUM_TRAIN = 1, 2000


def section_names(value: str) -> list[str]:
    """`--only`'s value: section names, comma-separated, each one of the table's."""
    names = [name.strip() for name in value.split(",") if name.strip()]
    unknown = [name for name in names if name not in SECTIONS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"{value!r}: choose among {', '.join(SECTIONS)}, comma-separated")
    return names


def parser() -> argparse.ArgumentParser:
    """The command line of `make bench ARGS=...`."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--num-train", type=int, default=20000)
    parser.add_argument(
        "--quick",
        action="store_true",
        help="fewer repeats and samples, and no slow sections unless --only names them, to check the script works",
    )
    parser.add_argument(
        "--only",
        type=section_names,
        metavar="NAME[,NAME]",
        help=f"run these sections ({', '.join(SECTIONS)}) and update them in benchmarks/results.*",
    )
    parser.add_argument(
        "--out", type=Path, default=ROOT / "benchmarks", help="folder of results.json and results.md (%(default)s)"
    )
    return parser


def main() -> None:
    args = parser().parse_args()
    # As trainlab-train does: importing Lightning turns on torch's NVML GPU probe, which Adam repeats on
    # every step (a failed library load each time, on a machine without GPUs). All contenders gain alike.
    stop_gpu_probes_without_gpus()
    whole = args.only is None
    repeats, num_train = (QUICK_REPEATS, QUICK_NUM_TRAIN) if args.quick else (args.repeats, args.num_train)
    # The machine's description and load belong to a whole run: --only leaves those of the last one.
    results: Results = {"machine": machine()} if whole else {}
    with tempfile.TemporaryDirectory() as tmp:
        run = Run(Path(tmp), repeats=repeats, num_train=num_train, quick=args.quick)
        results.update(measure_sections(args.only or list(SECTIONS), run, skip_slow=args.quick and whole))
    if whole:
        results["machine"]["load_average_1min_at_end"] = round(os.getloadavg()[0], 2)
    write_results(results, args.out, update=not whole)


def machine() -> Results:
    """What the numbers were measured on, and how busy it was at the start."""
    return {
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "processor": platform.processor() or platform.machine(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "load_average_1min_at_start": round(os.getloadavg()[0], 2),
    }


def write_results(results: Results, out: Path, update: bool = False) -> None:
    """results.json and results.md in `out`; `update` replaces only the given entries of what is there."""
    out.mkdir(parents=True, exist_ok=True)
    if update and (out / "results.json").is_file():
        results = {**json.loads((out / "results.json").read_text()), **results}
    (out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    (out / "results.md").write_text(markdown(results))
    print(markdown(results))


def markdown(results: Results) -> str:
    """One table row a measure: `entry.measure | value`, or `entry | not measured`."""
    lines = ["| measure | value |", "|---|---|"]
    for section, values in results.items():
        if values is None:
            lines.append(f"| {section} | not measured |")
            continue
        for key, value in values.items():
            lines.append(f"| {section}.{key} | {value} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
