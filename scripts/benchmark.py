"""Measure what the template costs: `make bench` (or `.venv/bin/python scripts/benchmark.py`).

Runs, in one process, side by side and alternating (A B A B ...), medians over repeats, the sections of
bench/sections.py in this order (one module each in scripts/bench/):
  epoch      the same CNN on the same in-memory data for three epochs, by a hand-written PyTorch loop and
             through trainlab's LightningModule + DataModule + Trainer as configured by default (and, for
             reference, through a bare Lightning Trainer): the steady epoch time (epochs 2-3) and the whole
             fit; then start-up: process start to first training step, and `trainlab-train debug=fdr` to exit;
  steps      the template's training step on the recipe of `experiment=mnist_cnn` against a hand-written step,
             interleaved step by step inside one fit (and two bare Lightning Trainers' against it, with
             automatic and with manual optimization), each step split into phases by Lightning's hooks: the fit
             loop's cost, measured finely enough to see past the machine's drift, and where it goes;
  data       building the synthetic_images training set and streaming one epoch of batches;
  accuracy   time to accuracy of `experiment=mnist_cnn`, seeds 1-3, 32-bit and trainer=bf16, on MNIST-sized
             synthetic images and on the official MNIST files when they are in data/MNIST/raw;
  whole      `trainlab-train experiment=mnist_cnn` against the same recipe written by hand in plain PyTorch
             (bench/hand_loop.py), each a whole process, seeds 1-3, on MNIST-format synthetic digits and the
             official files when present: seconds, test accuracy, the paired ratio, where the time goes, and
             whether the template is within 1.2x at 99%; results.md sums it up above its table;
  multirun   a 4-job multirun with the joblib launcher against the basic one, where joblib is installed;
  precision  bfloat16 mixed precision against 32-bit, for the hand-written loop and the template, with the
             accuracy each reaches;
  search     a 12-trial Optuna search of the CNN's learning rate and width on synthetic images, without and
             with a pruner: wall time and best val/acc of each;
  scaling    how costs grow: epoch time and peak memory at 10k, 60k and 600k images, and joblib sweeps of 4
             and 8 jobs sharing their data or not (also `scripts/benchmark_scaling.py` alone);
  workers    a 16-trial search of 1- to 4-epoch trials on 4 slots, as batches and as 4 workers sharing the
             study: wall time and how busy the slots were.
`--only NAME[,NAME]` runs those sections alone (`--only epoch`, `--only search,precision`).
`--accelerator gpu` (default cpu) trains epoch and accuracy on one CUDA GPU (`make gpu-check` runs
`--accelerator gpu --only epoch,accuracy`); the other sections measure the CPU only: `--only` naming one of
them with gpu is an argparse error, and a whole gpu run leaves them "not measured". Without a CUDA GPU,
`--accelerator gpu` stops at once with one line, exit code 1. The entries of epoch and accuracy name the
device they were measured on (`device`), a whole run's `machine` entry the accelerator and GPU, and
results.md says above its table which entries are GPU figures.
Writes benchmarks/results.json and benchmarks/results.md (`--only` updates its own sections there).
"""

import argparse
import json
import os
import platform
import sys
import tempfile
from pathlib import Path

import torch

from bench.common import ACCELERATORS, ROOT, Results, Run
from bench.sections import SECTIONS, cpu_only, measure_sections
from bench.whole_process import summary_lines
from runkit.process.memory import keep_freed_memory
from runkit.process.setup import stop_gpu_probes_without_gpus

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
    parser.add_argument(
        "--accelerator",
        choices=ACCELERATORS,
        default="cpu",
        help="where epoch and accuracy train, one device (%(default)s); gpu: one CUDA GPU, and only those sections",
    )
    return parser


def arguments(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line, checked before anything is measured: `--accelerator gpu` with a CPU-only section in
    `--only` is a usage error; on a machine without a CUDA GPU, one line and exit code 1."""
    command = parser()
    args = command.parse_args(argv)
    if args.accelerator == "gpu":
        if args.only and (cpu := cpu_only(args.only)):
            gpu = ", ".join(name for name, section in SECTIONS.items() if section.gpu)
            command.error(f"--accelerator gpu: {', '.join(cpu)} measure the CPU only; with gpu, --only takes {gpu}")
        if not torch.cuda.is_available():
            sys.exit(
                "scripts/benchmark.py --accelerator gpu needs a CUDA GPU, and torch finds none here "
                "(torch.cuda.is_available() is False); use --accelerator cpu."
            )
    return args


def main() -> None:
    args = arguments()
    # As trainlab-train does: importing Lightning turns on torch's NVML GPU probe, which Adam repeats on
    # every step (a failed library load each time, on a machine without GPUs). All contenders gain alike.
    stop_gpu_probes_without_gpus()
    keep_freed_memory()  # as trainlab-train does, for the in-process contenders alike (process/memory.py)
    whole = args.only is None
    repeats, num_train = (QUICK_REPEATS, QUICK_NUM_TRAIN) if args.quick else (args.repeats, args.num_train)
    # The machine's description and load belong to a whole run: --only leaves those of the last one.
    results: Results = {"machine": machine(args.accelerator)} if whole else {}
    with tempfile.TemporaryDirectory() as tmp:
        run = Run(Path(tmp), repeats=repeats, num_train=num_train, quick=args.quick, accelerator=args.accelerator)
        results.update(measure_sections(args.only or list(SECTIONS), run, skip_slow=args.quick and whole))
    if whole:
        results["machine"]["load_average_1min_at_end"] = round(os.getloadavg()[0], 2)
    write_results(results, args.out, update=not whole)


def machine(accelerator: str = "cpu") -> Results:
    """What the numbers were measured on, and how busy it was at the start; with gpu, which GPU."""
    gpu = {"gpu": torch.cuda.get_device_name(0), "cuda": torch.version.cuda} if accelerator == "gpu" else {}
    return {
        "accelerator": accelerator,
        **gpu,
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
    """The device line and the whole-process summary, then one table row a measure: `entry.measure | value`, or
    `entry | not measured`."""
    lines = [
        devices_line(results),
        *summary_lines(results.get("whole_process")),
        "",
        "| measure | value |",
        "|---|---|",
    ]
    for section, values in results.items():
        if values is None:
            lines.append(f"| {section} | not measured |")
            continue
        for key, value in values.items():
            lines.append(f"| {section}.{key} | {value} |")
    return "\n".join(lines) + "\n"


def devices_line(results: Results) -> str:
    """Which entries were measured on a GPU (their `device` is not "cpu"), and that the rest were on the CPU."""
    on: dict[str, list[str]] = {}
    for name, values in results.items():
        device = values.get("device", "cpu") if isinstance(values, dict) else "cpu"
        if device != "cpu":
            on.setdefault(device, []).append(name)
    if not on:
        return "Device: every figure below was measured on the CPU."
    gpus = "; ".join(f"{', '.join(names)} on {device}" for device, names in on.items())
    return f"Device: {gpus}; every other figure on the CPU."


if __name__ == "__main__":
    main()
