"""Section `workers`: the same 16-trial search on 4 slots, run as batches (the sweeper asks for 4 trials, the joblib
launcher runs them, the next 4 wait for the slowest) and as 4 workers sharing the study (each takes the next trial
when it is free). Trials last 1 to 4 epochs (`trainer.max_epochs` is searched), so batches leave slots idle.

Both use the random sampler with the same seed: trial n gets the same parameters in both, so the work is the
same. Each mode runs twice, alternating (batches, workers, batches, workers), on the same machine.
Per search: the command's wall time; the slot-seconds the trials were busy (each job from Hydra writing its
config to its status.yaml being written); how busy the 4 slots were, over the command's wall time and over the
span from the first job's start to the last job's end; and the trials' states.
"""

import subprocess
import tempfile
import time
from pathlib import Path

import optuna

from bench.common import BIN, Results, Run, median_of
from runkit.search import open_storage

SLOTS, TRIALS = 4, 16
SEARCH = [
    "hparams_search=optuna",
    f"hydra.sweeper.n_trials={TRIALS}",
    "hydra/sweeper/sampler=random",
    "hydra.sweeper.params={optimizer.weight_decay:0.0,model.net.dropout:0.0}",  # fixed: only lr and length vary
    "optimizer.lr=tag(log, interval(0.0005, 0.05))",
    "trainer.max_epochs=choice(1, 2, 3, 4)",
    "data=synthetic_classification",
    "model=mlp",
    "data.num_train=8000",
    "data.num_val=1000",
    "data.num_test=500",
    "data.batch_size=64",
    "trainer.accelerator=cpu",
    "extras.num_threads=1",
    "extras.print_config=false",
    "callbacks.progress_bar=null",
    "callbacks.model_summary=null",
    "callbacks.early_stopping=null",
]
MODES = {
    "batches": ["hydra/launcher=joblib", f"hydra.launcher.n_jobs={SLOTS}", f"hydra.sweeper.n_jobs={SLOTS}"],
    "workers": [f"hydra.sweeper.workers={SLOTS}"],
}


def measure(run: Run) -> Results:
    rounds = [{mode: search(mode, run.workdir) for mode in MODES} for _ in range(2)]
    summary = {
        mode: {
            "wall_s": median_of([r[mode]["wall_s"] for r in rounds]),
            "busy_over_wall": median_of([r[mode]["busy_over_wall"] for r in rounds]),
            "busy_over_span": median_of([r[mode]["busy_over_span"] for r in rounds]),
        }
        for mode in MODES
    }
    ratios = [r["workers"]["wall_s"] / r["batches"]["wall_s"] for r in rounds]
    same_trials = all(r["workers"]["params"] == r["batches"]["params"] for r in rounds)
    return {
        "workers_vs_batches": {
            "command": "trainlab-train -m " + " ".join(SEARCH) + "  [+ batches or workers settings]",
            "modes": {mode: " ".join(settings) for mode, settings in MODES.items()},
            "slots": SLOTS,
            "trials": TRIALS,
            "same_trials_in_both": same_trials,
            "rounds": [{mode: {k: v for k, v in r[mode].items() if k != "params"} for mode in MODES} for r in rounds],
            "median": summary,
            "wall_ratio_workers_over_batches": [round(ratio, 3) for ratio in ratios],
            "goals": {
                "workers_busy_at_least_0.85": summary["workers"]["busy_over_wall"] >= 0.85,
                "workers_wall_at_most_0.85x_batches": max(ratios) <= 0.85,
            },
        }
    }


def search(mode: str, cwd: Path) -> dict:
    """One search as a user runs it, timed; how busy its slots were, read back from its job folders."""
    sweep_dir = Path(tempfile.mkdtemp(dir=cwd)) / "search"
    args = ["-m", *SEARCH, *MODES[mode], f"hydra.sweep.dir={sweep_dir}", f"paths.log_dir={cwd}"]
    start = time.time()
    subprocess.run([str(BIN / "trainlab-train"), *args], cwd=cwd, check=True, capture_output=True)
    end = time.time()
    jobs = [job_span(folder) for folder in sweep_dir.iterdir() if (folder / "status.yaml").is_file()]
    busy = sum(stop - begin for begin, stop in jobs)
    span = max(stop for _, stop in jobs) - min(begin for begin, _ in jobs)
    study = optuna.load_study(study_name="train_optuna", storage=open_storage(str(sweep_dir / "optuna.journal"), "x"))
    states = [trial.state.name.lower() for trial in study.trials]
    return {
        "wall_s": round(end - start, 1),
        "busy_slot_s": round(busy, 1),
        "busy_over_wall": round(busy / (SLOTS * (end - start)), 3),
        "busy_over_span": round(busy / (SLOTS * span), 3),
        "jobs": len(jobs),
        "trials": {state: states.count(state) for state in dict.fromkeys(states)},
        "params": {trial.number: trial.params for trial in study.trials},
    }


def job_span(folder: Path) -> tuple[float, float]:
    """When a job started (Hydra writes its config first) and ended (its status.yaml, written last)."""
    return (folder / ".hydra" / "config.yaml").stat().st_mtime, (folder / "status.yaml").stat().st_mtime
