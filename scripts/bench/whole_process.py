"""Section `whole`: what a user waits for, one command to its end. `trainlab-train experiment=mnist_cnn` against
bench/hand_loop.py, the same recipe written by hand in plain PyTorch, each timed as a whole process from here.

On MNIST-format synthetic digits (trainlab's glyphs written as IDX files into a temporary data folder: 55,000 +
5,000 training and 10,000 test images) and on the official MNIST files when they are in data/MNIST/raw; seeds
1, 2, 3. For each seed, one after the other: the template, the hand-written script, the hand-written script again
keeping its freed memory as trainlab-train does (glibc's thresholds, set through environment variables: what
process/memory.py is worth, apart from the template), and the template's breakdown-only run (below).
Per dataset: the processes' seconds and test accuracies, seed by seed; the paired ratios template/hand of each
seed, and their median, min and max, against both hand-written runs; the same for the training passes alone
(`fit_ratio`: the breakdown run's fit against the hand-written script's, paired by seed; both train two epochs,
so it is also the ratio per epoch); whether both reached 99% test accuracy; whether the goals are met (the median
whole-process ratio against the plain hand-written script at most GOAL_RATIO, with both at 99%; the median fit
ratio against the hand-written script with the same allocator settings at most GOAL_FIT_RATIO: the fit loop's
cost, like for like).

Where the time goes, in seconds (each phase is wall-clock time from the process's start as seen from here):
  startup     process start to the first training batch: interpreter, imports, config, data, net (and, in the
              template, the trainer and Lightning's sanity check of two validation batches);
  data        reading, standardising and splitting the files: part of startup;
  fit         the training passes (in the template also the checkpoints written after each validation);
  validation  the validation passes after each epoch;
  test        restoring the best weights and evaluating the test set;
  other       the rest of the whole process: what follows the test (the template's final metrics and
              hyperparameter logging) and the interpreter's exit;
  total       the whole process.
The hand-written script's come from its own clock (--out), medians over the seeds. The template's come from a
separate breakdown-only run of the same command for each seed, with bench/phase_clock.py's callback added (medians
over the seeds): the timed runs are left exactly as a user types them. Its `data` is its datamodule's setup on the same files,
timed in this process (the run logs no mark before its data).

The runs are pinned to the CPU, one device (bench.common.trainer_overrides): the section measures the CPU only.
--quick: tiny data (QUICK sizes) and seed 1 only, on the synthetic digits alone, to check that it works.
"""

import json
import os
import struct
import subprocess
import sys
import time
from pathlib import Path
from typing import NamedTuple

import torch

from bench.accuracy import command, mnist_files_present
from bench.common import BIN, ROOT, Results, Run, median_of, paired_ratio, trainer_overrides
from runkit.building import build_datamodule
from runkit.config import compose
from runkit.process.memory import MMAP_THRESHOLD_BYTES, TRIM_THRESHOLD_BYTES
from runkit.runs.status import read_status
from trainlab.data.glyphs import render_digits


class Sizes(NamedTuple):
    """Images of each split: the training file holds train + val, the test file test."""

    train: int
    val: int
    test: int


FULL, QUICK = Sizes(55_000, 5_000, 10_000), Sizes(2_048, 512, 1_024)  # QUICK: 8 batches of 256 an epoch
SEEDS, QUICK_SEEDS = (1, 2, 3), (1,)
GOAL_RATIO, GOAL_ACCURACY, GOAL_FIT_RATIO = 1.2, 0.99, 1.05
# glibc's environment variables for the thresholds trainlab-train sets through mallopt (process/memory.py): the
# hand-written script run again with them shows what that setting is worth, apart from the template.
KEEPING_FREED_MEMORY = {
    "MALLOC_MMAP_THRESHOLD_": str(MMAP_THRESHOLD_BYTES),
    "MALLOC_TRIM_THRESHOLD_": str(TRIM_THRESHOLD_BYTES),
}
HAND_LOOP = Path(__file__).with_name("hand_loop.py")
PHASES = ("startup_s", "data_s", "fit_s", "validation_s", "test_s", "other_s", "total_s")


class Process(NamedTuple):
    """One whole process as seen from here: when it started (time.time()), its seconds, its test accuracy (None
    if it failed), and its phases where it reports them."""

    started_at: float
    seconds: float
    test_acc: float | None
    phases: dict[str, float] | None = None


def measure(run: Run) -> Results:
    """Every dataset, every seed; the entry `whole_process`."""
    sizes, seeds = (QUICK, QUICK_SEEDS) if run.quick else (FULL, SEEDS)
    datasets = {"synthetic": write_synthetic_digits(run.workdir / "synthetic_digits", sizes)}
    if not run.quick and mnist_files_present():
        datasets["mnist"] = ROOT / "data"
    results: Results = {
        "device": "cpu",
        "seeds": list(seeds),
        "synthetic_images": sizes._asdict(),
        "template_command": " ".join(["trainlab-train", *template_overrides(Path("DIR"), sizes.val, "S")]),
        "hand_command": " ".join(
            ["python", str(HAND_LOOP.relative_to(ROOT)), *hand_arguments(Path("DIR"), sizes.val, "S")]
        ),
        "goal": f"median template/hand at most {GOAL_RATIO}, both at {GOAL_ACCURACY:.0%} test accuracy or more",
    }
    for name, data_dir in datasets.items():
        num_val = sizes.val if name == "synthetic" else FULL.val
        results.update(compare(name, data_dir, num_val, seeds, run.workdir / name))
    return {"whole_process": results}


def compare(name: str, data_dir: Path, num_val: int, seeds: tuple[int, ...], workdir: Path) -> Results:
    """Per seed, one after the other: the template, the hand-written script, the same script keeping its freed
    memory as trainlab-train does (process/memory.py), and the template's breakdown-only run."""
    template, hand, hand_keeping, breakdowns = [], [], [], []
    for seed in seeds:
        folder = workdir / f"seed_{seed}"
        template.append(timed_template(data_dir, num_val, seed, folder / "template"))
        hand.append(timed_hand_loop(data_dir, num_val, seed, folder / "hand"))
        hand_keeping.append(timed_hand_loop(data_dir, num_val, seed, folder / "hand_keeping", KEEPING_FREED_MEMORY))
        breakdowns.append(template_breakdown(data_dir, num_val, seed, folder / "template_breakdown"))
    ratio = ratios(template, hand)
    fit_ratio = fit_ratios(breakdowns, [p.phases for p in hand])
    # The fit loop's goal is judged like for like: against the hand-written training with the same allocator.
    fit_ratio_keeping = fit_ratios(breakdowns, [p.phases for p in hand_keeping])
    reached = all(p.test_acc is not None and p.test_acc >= GOAL_ACCURACY for p in template + hand)
    return {
        f"{name}_seconds": {
            "template": seconds_of(template),
            "hand": seconds_of(hand),
            "hand_keeping_freed_memory": seconds_of(hand_keeping),
        },
        f"{name}_test_acc": {who: [p.test_acc for p in runs] for who, runs in (("template", template), ("hand", hand))},
        f"{name}_ratio_template_over_hand": ratio,
        f"{name}_ratio_template_over_hand_keeping_freed_memory": ratios(template, hand_keeping),
        f"{name}_fit_ratio_template_over_hand": fit_ratio,
        f"{name}_fit_ratio_template_over_hand_keeping_freed_memory": fit_ratio_keeping,
        f"{name}_both_reached_99pct": reached,
        f"{name}_goal_met": reached and ratio is not None and ratio["median"] <= GOAL_RATIO,
        f"{name}_fit_goal_met": fit_ratio_keeping is not None and fit_ratio_keeping["median"] <= GOAL_FIT_RATIO,
        f"{name}_template_breakdown_s": median_phases(breakdowns),
        f"{name}_hand_breakdown_s": median_phases([p.phases for p in hand]),
        f"{name}_hand_keeping_freed_memory_breakdown_s": median_phases([p.phases for p in hand_keeping]),
    }


def median_phases(runs: list[dict[str, float] | None]) -> dict[str, float] | None:
    """Each phase's median over the runs; None when one of them failed."""
    if any(phases is None for phases in runs):
        return None
    return {phase: round(median_of([phases[phase] for phases in runs]), 2) for phase in PHASES}


def seconds_of(processes: list[Process]) -> list[float]:
    return [round(p.seconds, 2) for p in processes]


def ratios(template: list[Process], hand: list[Process]) -> Results | None:
    """Each seed's template/hand seconds, and their median, min and max; None when a process failed."""
    if any(p.test_acc is None for p in template + hand):
        return None
    return per_seed_ratios([p.seconds for p in template], [p.seconds for p in hand])


def fit_ratios(template: list[dict[str, float] | None], hand: list[dict[str, float] | None]) -> Results | None:
    """Each seed's template/hand seconds of training (`fit_s`: the same two epochs, so also the ratio per epoch),
    and their median, min and max; None when a run failed."""
    if any(phases is None for phases in template + hand):
        return None
    return per_seed_ratios([phases["fit_s"] for phases in template], [phases["fit_s"] for phases in hand])


def per_seed_ratios(template: list[float], hand: list[float]) -> Results:
    """Each seed's template/hand seconds, and their median, min and max."""
    return {"per_seed": [round(a / b, 3) for a, b in zip(template, hand, strict=True)], **paired_ratio(template, hand)}


# --- the processes ----------------------------------------------------------------------------------------------
def template_overrides(data_dir: Path, num_val: int, seed: int | str) -> list[str]:
    """`experiment=mnist_cnn` on the IDX files in data_dir, pinned to one CPU device (never downloading)."""
    data = [f"data.data_dir={data_dir}", "data.download=false", f"data.num_val={num_val}"]
    return command(data, [], seed, trainer_overrides("cpu"))


def hand_arguments(data_dir: Path, num_val: int, seed: int | str) -> list[str]:
    """bench/hand_loop.py's arguments for this data and seed (--num-val only where it is not the recipe's)."""
    arguments = ["--data-dir", str(data_dir), "--seed", str(seed)]
    return arguments + ([] if num_val == FULL.val else ["--num-val", str(num_val)])


def started_process(args: list[str], folder: Path, env: dict[str, str] | None = None) -> tuple[float, float, bool]:
    """Run `args` in `folder`, its output kept there: (time.time() at its start, its seconds, whether it ended well)."""
    folder.mkdir(parents=True, exist_ok=True)
    started_at, start = time.time(), time.perf_counter()
    with open(folder / "output.log", "w") as output:
        result = subprocess.run(args, cwd=folder, stdout=output, stderr=subprocess.STDOUT, env=env)
    seconds = time.perf_counter() - start
    if result.returncode != 0:  # its accuracy reads None; say why
        tail = (folder / "output.log").read_text().splitlines()[-15:]
        print(f"{' '.join(args)} failed (exit {result.returncode}):", *tail, sep="\n", file=sys.stderr)
    return started_at, seconds, result.returncode == 0


def timed_template(data_dir: Path, num_val: int, seed: int, folder: Path, extra: tuple[str, ...] = ()) -> Process:
    """One `trainlab-train` process; its test accuracy read from its run folder's status.yaml."""
    run_dir = folder / "run"
    args = [str(BIN / "trainlab-train"), *template_overrides(data_dir, num_val, seed), f"hydra.run.dir={run_dir}"]
    # What `extra` adds (the phase clock) is imported from scripts/bench.
    paths = os.pathsep.join(filter(None, [str(ROOT / "scripts"), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "PYTHONPATH": paths} if extra else None
    started_at, seconds, ok = started_process([*args, *extra], folder, env)
    acc = read_status(run_dir).get("metrics", {}).get("test/acc") if ok else None
    return Process(started_at, seconds, None if acc is None else round(float(acc), 4))


def timed_hand_loop(
    data_dir: Path, num_val: int, seed: int, folder: Path, environment: dict[str, str] | None = None
) -> Process:
    """One bench/hand_loop.py process (with these environment variables added); its accuracy and phases from its
    --out file, told when it was started."""
    out = folder / "times.json"
    args = [sys.executable, str(HAND_LOOP), *hand_arguments(data_dir, num_val, seed), "--out", str(out)]
    told = time.time()  # the script counts its start-up from here; started_process takes its own clock just after
    env = {**os.environ, **environment} if environment else None
    started_at, seconds, ok = started_process([*args, "--started-at", repr(told)], folder, env)
    if not ok:
        return Process(started_at, seconds, None)
    inside = json.loads(out.read_text())
    phases = {phase: inside[phase] for phase in PHASES[:5]}
    return Process(started_at, seconds, round(inside["test_acc"], 4), {**phases, **rest(phases, seconds)})


def rest(phases: dict[str, float], total: float) -> dict[str, float]:
    """`other_s` (the whole process less startup, fit, validation and test) and `total_s`."""
    counted = sum(phases[name] for name in ("startup_s", "fit_s", "validation_s", "test_s"))
    return {"other_s": total - counted, "total_s": total}


def template_breakdown(data_dir: Path, num_val: int, seed: int, folder: Path) -> dict[str, float] | None:
    """The phases of a breakdown-only `trainlab-train` run, timed by bench/phase_clock.py's callback."""
    marks_file = folder / "marks.json"
    clock = [
        "+callbacks.phase_clock._target_=bench.phase_clock.PhaseClock",
        f"+callbacks.phase_clock.path={marks_file}",
    ]
    process = timed_template(data_dir, num_val, seed, folder, extra=tuple(clock))
    if process.test_acc is None:
        return None
    marks = json.loads(marks_file.read_text())
    validation = sum(end - start for start, end in marks["validations"])
    phases = {
        "startup_s": marks["first_batch"] - process.started_at,
        "data_s": template_data_seconds(data_dir, num_val, seed, folder / "data"),
        "fit_s": marks["fit_end"] - marks["first_batch"] - validation,
        "validation_s": validation,
        "test_s": marks["test_end"] - marks["fit_end"],
    }
    return {name: round(value, 2) for name, value in {**phases, **rest(phases, process.seconds)}.items()}


def template_data_seconds(data_dir: Path, num_val: int, seed: int, folder: Path) -> float:
    """Seconds of the template's datamodule setup for the same config and files, in this process."""
    cfg = compose("train", template_overrides(data_dir, num_val, seed), folder)
    datamodule = build_datamodule(cfg.data)
    start = time.perf_counter()
    datamodule.setup("fit")
    return time.perf_counter() - start


# --- the synthetic digits ---------------------------------------------------------------------------------------
def write_idx(path: Path, array: torch.Tensor) -> None:
    """An uint8 tensor in MNIST's file format: 0, 0, the type code 0x08, the rank, big-endian sizes, the bytes."""
    header = struct.pack(f">BBBB{array.dim()}I", 0, 0, 0x08, array.dim(), *array.shape)
    path.write_bytes(header + array.contiguous().numpy().tobytes())


def write_synthetic_digits(data_dir: Path, sizes: Sizes, seed: int = 0) -> Path:
    """trainlab's synthetic digits as MNIST's four IDX files in data_dir/MNIST/raw/ (pixels rounded to bytes)."""
    raw = data_dir / "MNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    generator = torch.Generator().manual_seed(seed)
    for part, count in (("train", sizes.train + sizes.val), ("t10k", sizes.test)):
        labels = torch.randint(0, 10, (count,), generator=generator)
        pixels = render_digits(labels, generator).squeeze(1).mul_(255).round_().to(torch.uint8)
        write_idx(raw / f"{part}-images-idx3-ubyte", pixels)
        write_idx(raw / f"{part}-labels-idx1-ubyte", labels.to(torch.uint8))
    return data_dir


# --- the report -------------------------------------------------------------------------------------------------
def summary_lines(entry: Results | None) -> list[str]:
    """results.md's lines on this section, above the table: per dataset the median ratios, their spread, the goals."""
    if not entry:
        return []
    lines = []
    for name in ("synthetic", "mnist"):
        if f"{name}_goal_met" not in entry:
            continue
        reached = "yes" if entry[f"{name}_both_reached_99pct"] else "no"
        goal = "met" if entry[f"{name}_goal_met"] else "not met"
        fit_goal = "met" if entry.get(f"{name}_fit_goal_met") else "not met"
        lines.append(
            f"Whole process, {name}: template/hand {spread(entry[f'{name}_ratio_template_over_hand'])} over seeds "
            f"{entry['seeds']}; both at 99% test accuracy: {reached}; goal (at most {GOAL_RATIO}x, both at 99%): "
            f"{goal}. Training passes alone, template/hand: {spread(entry.get(f'{name}_fit_ratio_template_over_hand'))}. "
            f"Against the hand-written script keeping its freed memory as trainlab-train does: whole process "
            f"{spread(entry.get(f'{name}_ratio_template_over_hand_keeping_freed_memory'))}, training passes "
            f"{spread(entry.get(f'{name}_fit_ratio_template_over_hand_keeping_freed_memory'))}; fit goal (at most "
            f"{GOAL_FIT_RATIO}x, like for like): {fit_goal}."
        )
    return lines


def spread(ratio: Results | None) -> str:
    """A paired ratio as `median x (min-max)`."""
    return f"{ratio['median']}x ({ratio['min']}-{ratio['max']})" if ratio else "not measured (a run failed)"
