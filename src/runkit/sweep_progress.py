"""Where a search stands, read from its sweep folder while it runs: `trainlab-summarize <sweep folder>` prints it
above the table of finished jobs.

The search's command records its study in `<sweep>/search.yaml` (study name, storage, n_trials); workers
submitted to SLURM are listed in `<sweep>/workers/` (runkit.sweep_workers), and squeue says how each is doing.
"""

import subprocess
from collections import Counter
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from runkit.config import ConfigError
from runkit.sweep_workers import TAKES_OVER, submitted_arrays

SEARCH_FILE = "search.yaml"


def record_search(sweep_dir: Path, study_name: str, storage: str | None, n_trials: int) -> None:
    """What the progress view needs to find the study again."""
    sweep_dir.mkdir(parents=True, exist_ok=True)
    search = {"study_name": study_name, "storage": storage, "n_trials": n_trials}
    OmegaConf.save(OmegaConf.create(search), sweep_dir / SEARCH_FILE)


def progress_lines(sweep_dir: Path) -> list[str]:
    """The search's trials by state, the best so far and its workers' SLURM states; [] for a sweep without a
    study to read (a grid sweep, or a search kept in memory)."""
    path = sweep_dir / SEARCH_FILE
    if not path.is_file():
        return []
    search = OmegaConf.to_container(OmegaConf.load(path))
    if search.get("storage") is None:
        return []
    try:
        study = load(search)
    except ConfigError as error:  # a damaged study: the jobs' own folders still say how each ended
        return [f"Study not read: {error}"]
    lines = [trial_counts(study, int(search["n_trials"]))]
    complete = [trial for trial in study.trials if trial.state.name == "COMPLETE"]
    if complete:
        best = study.best_trial
        params = ", ".join(
            f"{key}={value:.4g}" if isinstance(value, float) else f"{key}={value}" for key, value in best.params.items()
        )
        lines.append(f"Best so far: trial {best.number}, {best.value:.4g} ({params})")
    lines += [worker_states(array) for array in submitted_arrays(sweep_dir)]
    return lines


def load(search: dict[str, Any]) -> Any:
    import optuna

    from runkit.search import open_storage

    storage = open_storage(str(search["storage"]), str(search["study_name"]))
    return optuna.load_study(study_name=str(search["study_name"]), storage=storage)


def trial_counts(study: Any, n_trials: int) -> str:
    trials = study.get_trials(deepcopy=False)
    lost = {trial.user_attrs[TAKES_OVER] for trial in trials if TAKES_OVER in trial.user_attrs}
    states = Counter(trial.state.name for trial in trials if trial.number not in lost)
    done = states["COMPLETE"] + states["PRUNED"] + states["FAIL"]
    pending = max(n_trials - len(trials) + len(lost), 0) + states["WAITING"]
    taken_over = f"; {len(lost)} taken over from workers that stopped" if lost else ""
    return (
        f"Study {study.study_name}: {done} of {n_trials} trials done ({states['COMPLETE']} complete, "
        f"{states['PRUNED']} pruned, {states['FAIL']} failed), {states['RUNNING']} running, {pending} pending{taken_over}"
    )


def worker_states(array: str) -> str:
    """One line for an array of workers: how many tasks SLURM has in each state, or that it has none left."""
    command = ["squeue", "--noheader", "--array", "--jobs", array, "--format=%T"]
    try:
        listing = subprocess.run(command, capture_output=True, text=True, timeout=30).stdout.split()
    except (OSError, subprocess.SubprocessError):
        return f"Workers, SLURM job {array}: squeue did not answer"
    if not listing:
        return f"Workers, SLURM job {array}: none left in the queue"
    counts = Counter(listing)
    return f"Workers, SLURM job {array}: " + ", ".join(f"{count} {state.lower()}" for state, count in counts.items())
