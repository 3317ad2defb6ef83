"""What `hparams_search=optuna` needs beyond the Optuna sweeper: a study file, and a sampler that resumes.

Only imported when a search is configured, so a plain run never imports Optuna.
"""

from pathlib import Path
from typing import Any

from optuna.samplers import BaseSampler, TPESampler


def sqlite_storage(path: str) -> str:
    """The SQLite URL of a study file, its folder created first: Optuna opens the file before any job runs."""
    file = Path(path).expanduser().resolve()
    file.parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{file}"


class ResumableTPESampler(BaseSampler):
    """TPE whose random draws for trial n depend only on (seed, n).

    A plain seeded TPESampler restarts its random stream in every process, so a resumed search would
    propose its first trials again. Here each trial gets a TPESampler seeded with seed + its number:
    TPE keeps no other state (it reads the finished trials from the study), so a stopped and resumed
    search proposes what an uninterrupted one would have.
    """

    def __init__(self, seed: int | None = None, **tpe_options: Any) -> None:
        self.seed = seed
        self.tpe_options = tpe_options
        self.samplers: dict[int, TPESampler] = {}

    def for_trial(self, trial: Any) -> TPESampler:
        if trial.number not in self.samplers:
            seed = None if self.seed is None else (self.seed + trial.number) % 2**32
            self.samplers[trial.number] = TPESampler(seed=seed, **self.tpe_options)
        return self.samplers[trial.number]

    def infer_relative_search_space(self, study: Any, trial: Any) -> Any:
        return self.for_trial(trial).infer_relative_search_space(study, trial)

    def sample_relative(self, study: Any, trial: Any, search_space: Any) -> Any:
        return self.for_trial(trial).sample_relative(study, trial, search_space)

    def sample_independent(self, study: Any, trial: Any, param_name: str, param_distribution: Any) -> Any:
        return self.for_trial(trial).sample_independent(study, trial, param_name, param_distribution)

    def after_trial(self, study: Any, trial: Any, state: Any, values: Any) -> None:
        self.for_trial(trial).after_trial(study, trial, state, values)
        self.samplers.pop(trial.number, None)
