"""The sweeper's settings (`hydra.sweeper.*`) and its sampler and pruner options, registered in Hydra's ConfigStore.

Choose an option with `hydra/sweeper/sampler=random` or `hydra/sweeper/pruner=median`; each option is a
plain Optuna class and its arguments, so any argument of that class can be set or added:
`hydra.sweeper.pruner.n_warmup_steps=2`, `+hydra.sweeper.sampler.multivariate=true`.
"""

from dataclasses import dataclass, field
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING


@dataclass
class OptunaSweeperConf:
    _target_: str = "hydra_plugins.trainlab_optuna_sweeper.optuna_sweeper.OptunaSweeper"
    defaults: list[Any] = field(default_factory=lambda: [{"sampler": "tpe"}, {"pruner": "none"}])
    # The sampler and the pruner are built by the sweeper (the sampler once per trial, see runkit.search),
    # so Hydra passes their configs on unbuilt.
    _recursive_: bool = False
    sampler: Any = MISSING
    pruner: Any = MISSING
    direction: str = "minimize"  # or maximize
    # null: in memory; a file: <name>.db (SQLite) or <name>.journal (Optuna's journal file); or a database URL.
    storage: Any = None
    study_name: str = "search"
    # The study's total of finished trials (complete, pruned or failed), resumed runs included; null with the grid
    # sampler: every combination once.
    n_trials: Any = 20
    n_jobs: int = 1  # trials asked for, and launched, at once (without workers)
    # null: batches of n_jobs trials through the launcher. N: N workers share the study, each taking the next trial
    # as soon as it is free (runkit.sweep_workers); a worker silent for worker_timeout seconds counts as stopped,
    # and its trial is run again, resuming from its last.ckpt.
    workers: Any = None
    worker_timeout: float = 120
    # true: every combination of the searched values once, queued in the study in a basic sweep's order
    # (hparams_search=grid); the sampler is never asked.
    grid: bool = False
    # The search space in Hydra's override grammar: choice(...), range(...), interval(...), tag(log, ...).
    params: dict[str, Any] = field(default_factory=dict)


# Each option: the Optuna class and the arguments trainlab sets (the rest keep Optuna's defaults).
SAMPLERS = {
    "tpe": {"_target_": "optuna.samplers.TPESampler", "seed": None, "n_startup_trials": 10},
    "random": {"_target_": "optuna.samplers.RandomSampler", "seed": None},
    "cmaes": {"_target_": "optuna.samplers.CmaEsSampler", "seed": None, "n_startup_trials": 1},  # needs cmaes
    "gp": {"_target_": "optuna.samplers.GPSampler", "seed": None, "n_startup_trials": 10},  # needs scipy
}
PRUNERS = {
    "none": {"_target_": "optuna.pruners.NopPruner"},
    "median": {"_target_": "optuna.pruners.MedianPruner", "n_startup_trials": 5, "n_warmup_steps": 0},
    "successive_halving": {"_target_": "optuna.pruners.SuccessiveHalvingPruner", "min_resource": 1},
    "hyperband": {"_target_": "optuna.pruners.HyperbandPruner", "min_resource": 1, "max_resource": "auto"},
}

store = ConfigStore.instance()
store.store(group="hydra/sweeper", name="optuna", node=OptunaSweeperConf, provider="trainlab")
for name, node in SAMPLERS.items():
    store.store(
        group="hydra/sweeper/sampler", name=name, node=node, package="hydra.sweeper.sampler", provider="trainlab"
    )
for name, node in PRUNERS.items():
    store.store(group="hydra/sweeper/pruner", name=name, node=node, package="hydra.sweeper.pruner", provider="trainlab")
