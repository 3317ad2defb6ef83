"""What `hparams_search=optuna` needs beyond the Optuna sweeper: a study file, and a sampler that resumes.

Only imported when a search is configured, so a plain run never imports Optuna.
"""

from pathlib import Path
from typing import Any

import numpy as np
from optuna.samplers import RandomSampler, TPESampler


def sqlite_storage(path: str) -> str:
    """The SQLite URL of a study file, its folder created first: Optuna opens the file before any job runs."""
    file = Path(path).expanduser().resolve()
    file.parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{file}"


class ResumableTPESampler(TPESampler):
    """TPE whose random draws for trial n depend only on (seed, n).

    A plain seeded TPESampler restarts its random stream in every process, so a resumed search would
    propose its first trials again. Seeding each trial by its number makes a stopped and resumed
    search propose what an uninterrupted one would have.
    """

    def __init__(self, seed: int | None = None, **kwargs: Any) -> None:
        super().__init__(seed=seed, **kwargs)
        self._base_seed = seed

    def infer_relative_search_space(self, study: Any, trial: Any) -> Any:
        # Optuna calls this once as each trial starts, before anything is sampled for it.
        if self._base_seed is not None:
            trial_seed = (self._base_seed + trial.number) % 2**32
            self._rng = np.random.RandomState(trial_seed)
            self._random_sampler = RandomSampler(seed=trial_seed)
        return super().infer_relative_search_space(study, trial)
