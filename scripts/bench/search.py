"""Section `search`: a 12-trial Optuna search of the CNN's learning rate and width on synthetic images,
without and with a median pruner: the wall time and best val/acc of each, i.e. the time pruning saves and
the accuracy it gives up."""

import subprocess
import tempfile
import time
from pathlib import Path

import optuna

from bench.common import BIN, Results, Run
from runkit.search import open_storage

SEARCH = [
    "hparams_search=optuna",
    "hydra.sweeper.n_trials=12",
    "optimized_metric=val/acc",
    "hydra.sweeper.direction=maximize",
    "hydra.sweeper.params={optimizer.weight_decay:0.0,model.net.dropout:0.0}",  # fixed: only lr and width vary
    "optimizer.lr=tag(log, interval(0.0001, 0.3))",
    "model.net.hidden=choice(32, 64, 128, 256)",
    "data.num_train=4000",
    "data.num_val=1000",
    "data.num_test=500",
    "trainer.max_epochs=8",
    "trainer.accelerator=cpu",
    "extras.print_config=false",
    "callbacks.progress_bar=null",
    "callbacks.model_summary=null",
]
PRUNER = [
    "hydra/sweeper/pruner=median",
    "hydra.sweeper.pruner.n_startup_trials=3",
    "hydra.sweeper.pruner.n_warmup_steps=1",
]


def measure(run: Run) -> Results:
    """The search without a pruner, then with one, and how they differ."""
    plain, pruned = optuna_search([], run.workdir), optuna_search(PRUNER, run.workdir)
    return {
        "optuna_search_12_trials": {
            "optuna": optuna.__version__,
            "command": "trainlab-train -m " + " ".join(SEARCH) + "  [+ " + " ".join(PRUNER) + "]",
            "no_pruner": plain,
            "median_pruner": pruned,
            "wall_time_cut": round(1 - pruned["wall_s"] / plain["wall_s"], 3),
            "best_val_acc_difference_points": round(100 * (plain["best_val_acc"] - pruned["best_val_acc"]), 2),
        }
    }


def optuna_search(pruner: list[str], cwd: Path) -> Results:
    """One search as a user runs it (a subprocess), timed; the best val/acc read back from its study."""
    sweep_dir = Path(tempfile.mkdtemp(dir=cwd)) / "search"
    args = [*SEARCH, *pruner, f"hydra.sweep.dir={sweep_dir}", f"paths.log_dir={cwd}"]
    start = time.perf_counter()
    subprocess.run([str(BIN / "trainlab-train"), "-m", *args], cwd=cwd, check=True, capture_output=True)
    seconds = time.perf_counter() - start
    storage = open_storage(str(sweep_dir / "optuna.journal"), "train_optuna")
    study = optuna.load_study(study_name="train_optuna", storage=storage)
    states = [trial.state.name.lower() for trial in study.trials]
    return {
        "wall_s": round(seconds, 1),
        "best_val_acc": round(study.best_value, 4),
        "best_params": {key: round(value, 5) for key, value in study.best_params.items()},
        "trials": {state: states.count(state) for state in dict.fromkeys(states)},
    }
