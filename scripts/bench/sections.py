"""The table of the benchmark's sections: each name, the function that measures it, and the entries of
benchmarks/results.json it writes. `make bench` runs them all in this order; `--only NAME[,NAME]` runs
some of them, in the same order, by the same code (`measure_sections`).

`--accelerator gpu`: only the sections marked `gpu` here (epoch and accuracy) train on the GPU; their entries
say so (`device`). The others measure the CPU by design (steps, data, whole, multirun, precision, search and scaling pin
trainer.accelerator=cpu or time CPU-side work), so with gpu they are never run: `--only` naming one of them
is refused at once (an argparse error), and a whole run (no `--only`) leaves them "not measured", as
`--quick` leaves the slow ones. Their figures are then never taken for GPU ones."""

from collections.abc import Callable
from dataclasses import dataclass

from bench import accuracy, data, epoch, multirun, precision, scaling, search, steps, whole_process, workers
from bench.common import Results, Run
from bench.fits import EPOCHS


@dataclass(frozen=True)
class Section:
    """One section: what measures it and where its results go."""

    measure: Callable[[Run], Results]
    keys: tuple[str, ...]  # the entries it writes, and nothing else
    slow: bool = False  # minutes to hours: --quick leaves it out of the whole run, unless --only names it
    gpu: bool = False  # trains on run.accelerator; else CPU only, and never run with --accelerator gpu

    def not_measured(self) -> Results:
        """Its entries, each None: markdown() reads them as "not measured"."""
        return dict.fromkeys(self.keys)


# The order is the report's: the template's cost first, then the data, accuracy, parallelism and search.
SECTIONS: dict[str, Section] = {
    "epoch": Section(epoch.measure, ("epoch", f"fit_{EPOCHS}_epochs", "startup"), gpu=True),
    "steps": Section(steps.measure, ("steps",)),
    "data": Section(data.measure, ("data",)),
    "accuracy": Section(accuracy.measure, ("time_to_accuracy",), slow=True, gpu=True),
    "whole": Section(whole_process.measure, ("whole_process",), slow=True),
    "multirun": Section(multirun.measure, ("multirun_4_jobs",)),
    "precision": Section(precision.measure, ("precision_bf16",)),
    "search": Section(search.measure, ("optuna_search_12_trials",), slow=True),
    "workers": Section(workers.measure, ("workers_vs_batches",), slow=True),
    "scaling": Section(scaling.measure, ("scaling",), slow=True),
}


def cpu_only(names: list[str]) -> list[str]:
    """Those of the named sections that cannot run on the GPU."""
    return [name for name in names if not SECTIONS[name].gpu]


def measure_sections(names: list[str], run: Run, skip_slow: bool) -> Results:
    """The named sections' results, in the table's order; with `skip_slow`, the slow ones not measured, and
    on the GPU (run.accelerator "gpu") those that measure the CPU only not measured either."""
    results: Results = {}
    for name, section in SECTIONS.items():
        if name not in names:
            continue
        skipped = (skip_slow and section.slow) or (run.accelerator != "cpu" and not section.gpu)
        measured = section.not_measured() if skipped else section.measure(run)
        if set(measured) != set(section.keys):  # the table says where each result goes: keep it true
            raise RuntimeError(f"Section {name} wrote {sorted(measured)}, but the table says {sorted(section.keys)}")
        results.update(measured)
    return results
