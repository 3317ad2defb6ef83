"""What every section of the benchmark shares: where things are, how repeats are summed up, and the
settings of one benchmark run (`Run`), handed to each section's function.

`Run.accelerator` ("cpu" or "gpu", from `--accelerator`) is where a section that can train on the GPU
reads which one to use; the sections that cannot are marked so in bench/sections.py and never read it."""

import statistics
import sys
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from omegaconf import DictConfig

    from trainlab.data.tensor_datamodule import TensorDataModule

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent  # trainlab-train of the same environment as this interpreter

Results = dict[str, Any]  # entries of benchmarks/results.json, by name; None where a section measured nothing
ACCELERATORS = ("cpu", "gpu")  # --accelerator's choices, as Lightning's trainer.accelerator names them


@dataclass(frozen=True)
class Run:
    """The settings of one benchmark run, as every section reads them."""

    workdir: Path  # a temporary folder, for the runs' configs, logs and sweeps
    repeats: int
    num_train: int  # images in the training set of the in-process fits
    quick: bool  # fewer repeats and samples: checks that the sections work, measures little
    accelerator: str = "cpu"  # one of ACCELERATORS: where the sections that honour it train (one device)

    @property
    def device(self) -> str:
        """The torch device of the hand-written loop: "cuda" (the current GPU) or "cpu"."""
        return "cuda" if self.accelerator == "gpu" else "cpu"

    @property
    def trainer_overrides(self) -> list[str]:
        """The overrides that put a `trainlab-train` process on this run's accelerator."""
        return trainer_overrides(self.accelerator)

    @cached_property
    def device_label(self) -> str:
        """What the entries measured on this accelerator say they were measured on: "cpu", or "gpu (its name)"."""
        if self.accelerator != "gpu":
            return "cpu"
        import torch  # here, not above: see `template`

        return f"gpu ({torch.cuda.get_device_name(0)})"

    @cached_property
    def template(self) -> "tuple[DictConfig, TensorDataModule]":
        """The default config and its data, built once: the epoch and data sections measure the same set."""
        # Imported here, not above: the sections that only start processes (and scripts/benchmark_launchers.py
        # through bench.multirun) then never load torch and Lightning themselves.
        from bench.fits import template_setup

        return template_setup(self.workdir, self.num_train, batch_size=128, accelerator=self.accelerator)


def trainer_overrides(accelerator: str) -> list[str]:
    """The overrides that put a template run (in-process or `trainlab-train`) on this accelerator, one device:
    pinned, never `auto`, so that a CPU figure taken on a machine with a GPU is a CPU figure still."""
    if accelerator not in ACCELERATORS:
        raise ValueError(f"accelerator {accelerator!r}: choose among {', '.join(ACCELERATORS)}")
    return [f"trainer.accelerator={accelerator}", "trainer.devices=1"]


def median_of(runs: list[float]) -> float:
    """The median: one slow repeat (the machine busy elsewhere) moves it less than it moves a mean."""
    return statistics.median(runs)


def alternate(first: Callable[[], float], second: Callable[[], float], repeats: int) -> tuple[list[float], list[float]]:
    """Time two contenders A B A B ..., so drifts in machine load hit both alike."""
    a, b = [], []
    for _ in range(repeats):
        a.append(first())
        b.append(second())
    return a, b


def paired_ratio(numerators: list[float], denominators: list[float]) -> dict[str, float]:
    """The median of the repeats' own ratios, and their smallest and largest: how far the machine moves them."""
    ratios = [a / b for a, b in zip(numerators, denominators, strict=True)]
    return {"median": round(median_of(ratios), 3), "min": round(min(ratios), 3), "max": round(max(ratios), 3)}


def steady_epoch(epochs: list[float]) -> float:
    """The median epoch after the first, which carries the fit's start-up."""
    return median_of(epochs[1:])
