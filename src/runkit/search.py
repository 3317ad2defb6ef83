"""What the Optuna search's sweeper and its trials' jobs share: the study's storage, its sampler and pruner, a trial.

The sweeper (src/hydra_plugins/trainlab_optuna_sweeper) asks the study for trials and tells it how they
ended; a job whose search has a pruner opens its own trial here to report each validation epoch
(runkit.callbacks.optuna_trial). Only imported when a search runs, so a plain run never imports Optuna.
"""

import json
import logging
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import optuna
from omegaconf import DictConfig, OmegaConf
from optuna.samplers import BaseSampler
from optuna.storages import BaseStorage

from runkit.compat import reopen_trial
from runkit.config import ConfigError
from runkit.config.instantiate import build as build_from_config
from runkit.optional import is_installed, where_to_find

log = logging.getLogger(__name__)

SQLITE_SUFFIXES = (".db", ".sqlite", ".sqlite3")
JOURNAL_SUFFIXES = (".journal", ".log")
# Studies kept in memory (hydra.sweeper.storage=null), by study name: the jobs of the basic launcher run
# in the sweeper's own process and reach their trial through this.
IN_MEMORY: dict[str, BaseStorage] = {}
# What a sampler needs beyond Optuna itself.
SAMPLER_PACKAGES = {"CmaEsSampler": "cmaes", "GPSampler": "scipy"}


# --- the storage ----------------------------------------------------------------------------------------------
def open_storage(setting: str | None, study_name: str) -> BaseStorage:
    """hydra.sweeper.storage as an Optuna storage: null (memory), a .db or .journal file, or a database URL."""
    if setting is None:
        return IN_MEMORY.setdefault(study_name, optuna.storages.InMemoryStorage())
    setting = str(setting)
    if "://" in setting:
        return database_storage(setting)
    path = Path(setting).expanduser().resolve()
    if path.suffix in SQLITE_SUFFIXES + JOURNAL_SUFFIXES:
        path.parent.mkdir(parents=True, exist_ok=True)  # the study is opened before any job makes the folder
    if path.suffix in SQLITE_SUFFIXES:
        return optuna.storages.RDBStorage(f"sqlite:///{path}")
    if path.suffix in JOURNAL_SUFFIXES:
        check_journal(path, setting)
        return optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(path)))
    raise ConfigError(
        f"hydra.sweeper.storage={setting} is neither a study file nor a database URL; use a file ending in .db "
        f"(SQLite) or .journal (Optuna's journal file), a URL such as sqlite:///path/optuna.db, or null for memory."
    )


def check_journal(path: Path, setting: str) -> None:
    """Refuse a journal file that is not whole JSON records, one per line, before Optuna opens it: Optuna skips a
    record cut short and appends after it, which damages the file for good.

    Read under Optuna's own journal lock, so that a record another worker is writing is never taken for damage.
    """
    if not path.is_file() or path.stat().st_size == 0:
        return
    lock = optuna.storages.journal.JournalFileSymlinkLock(str(path))
    lock.acquire()
    try:
        content = path.read_bytes()
    finally:
        lock.release()
    lines = content.split(b"\n")
    problem = None if content.endswith(b"\n") else f"its last record, line {len(lines)}, is cut short"
    for number, line in enumerate(lines[:-1], start=1):
        try:
            json.loads(line)
        except ValueError:
            problem = f"line {number} is not a journal record"
            break
    if problem:
        raise ConfigError(unopenable_study(setting, problem))


def database_storage(url: str) -> BaseStorage:
    """A study on a database server (or SQLite by URL); a missing driver is one line, with the package to add."""
    try:
        return optuna.storages.RDBStorage(url)
    except ImportError as error:
        from sqlalchemy.engine import make_url

        shown = make_url(url).render_as_string(hide_password=True)
        raise ConfigError(
            f"hydra.sweeper.storage={shown} needs a database driver that is not installed ({error.__cause__ or error}); "
            f"for PostgreSQL, pip install -e '.[postgres]' (or make install-extras and use .venv-extras)."
        ) from error


def unopenable_study(setting: str | None, reason: str) -> str:
    """One line for a study that cannot be opened (a damaged journal or SQLite file, a database that refuses),
    naming it with any password hidden; the file is never moved or rewritten."""
    shown = str(setting)
    if "://" in shown:
        from sqlalchemy.engine import make_url

        url = make_url(shown)
        shown = url.render_as_string(hide_password=True)
        reason = re.sub(r"\(\w+(\.\w+)*\) ", "", reason)  # SQLAlchemy's repeat of the driver's error class
        if url.get_backend_name() != "sqlite":  # a database server that refuses, or is not there
            return (
                f"hydra.sweeper.storage={shown} could not be opened as an Optuna study ({reason}); nothing was "
                "written to it: check that its server runs and the URL's host, port, database, user and password "
                "(make postgres starts a PostgreSQL server here)."
            )
    return (
        f"hydra.sweeper.storage={shown} could not be opened as an Optuna study ({reason}); "
        "it is left as it is: restore it, move it aside to start a new study, or give another storage."
    )


def warn_if_sqlite_shared(setting: str | None) -> None:
    """SQLite's locking fails on shared file systems and under many writers: one line when it meets several."""
    text = str(setting or "")
    if text.startswith("sqlite:") or Path(text).suffix in SQLITE_SUFFIXES:
        log.warning(
            "hydra.sweeper.storage=%s is SQLite, whose locking is unreliable with several writers or on a shared "
            "file system; use a .journal file (the default) or a database server's URL.",
            setting,
        )


# --- the sampler and the pruner --------------------------------------------------------------------------------
class SeededPerTrial(BaseSampler):
    """An Optuna sampler built afresh for each trial, seeded from (seed, the trial's number).

    A seeded Optuna sampler draws from one random stream per process, so a search stopped and started
    again would propose its first trials again. Optuna's samplers keep what they learn in the study
    (the finished trials; CMA-ES its state in their system attributes), not in the sampler object, so
    a sampler per trial whose seed depends only on the trial's number proposes what an uninterrupted
    search would have. The trial's seed is mixed from both numbers (numpy's SeedSequence): adjacent
    seeds such as seed + number give nearly the same first draws in numpy's RandomState.
    """

    def __init__(self, build: Callable[[int | None], BaseSampler], seed: int | None) -> None:
        self.build = build
        self.seed = seed
        self.samplers: dict[int, BaseSampler] = {}

    def for_trial(self, trial: Any) -> BaseSampler:
        if trial.number not in self.samplers:
            seed = (
                None
                if self.seed is None
                else int(np.random.SeedSequence([self.seed, trial.number]).generate_state(1)[0])
            )
            self.samplers[trial.number] = self.build(seed)
        return self.samplers[trial.number]

    def before_trial(self, study: Any, trial: Any) -> None:
        self.for_trial(trial).before_trial(study, trial)

    def infer_relative_search_space(self, study: Any, trial: Any) -> Any:
        return self.for_trial(trial).infer_relative_search_space(study, trial)

    def sample_relative(self, study: Any, trial: Any, search_space: Any) -> Any:
        return self.for_trial(trial).sample_relative(study, trial, search_space)

    def sample_independent(self, study: Any, trial: Any, param_name: str, param_distribution: Any) -> Any:
        return self.for_trial(trial).sample_independent(study, trial, param_name, param_distribution)

    def after_trial(self, study: Any, trial: Any, state: Any, values: Any) -> None:
        self.for_trial(trial).after_trial(study, trial, state, values)
        self.samplers.pop(trial.number, None)


def build_sampler(config: Mapping[str, Any]) -> BaseSampler:
    """hydra.sweeper.sampler as a sampler seeded per trial number; a missing package is named in one line."""
    options = OmegaConf.to_container(config, resolve=True) if isinstance(config, DictConfig) else dict(config)
    seed = options.pop("seed", None)
    build_one = lambda trial_seed: build("hydra.sweeper.sampler", {**options, "seed": trial_seed})  # noqa: E731
    build_one(seed)  # a mistake shows now, not at the first trial
    return SeededPerTrial(build_one, seed)


def build_pruner(config: Mapping[str, Any] | None) -> optuna.pruners.BasePruner:
    if config is None:
        return optuna.pruners.NopPruner()
    options = OmegaConf.to_container(config, resolve=True) if isinstance(config, DictConfig) else dict(config)
    return build("hydra.sweeper.pruner", options)


def prunes(config: Mapping[str, Any] | None) -> bool:
    """Whether hydra.sweeper.pruner is set to something other than none."""
    return config is not None and config.get("_target_") != "optuna.pruners.NopPruner"


def build(key: str, options: dict[str, Any]) -> Any:
    """A sampler or pruner from its options; one that needs a package that is missing says which, and how to get it."""
    target = str(options.get("_target_"))
    package = SAMPLER_PACKAGES.get(target.rsplit(".", 1)[-1])
    if package and not is_installed(package):
        raise ConfigError(
            f"{key}: {target} needs {where_to_find(package)}, or choose another sampler (e.g. hydra/sweeper/sampler=tpe)."
        )
    return build_from_config(key, options)


# --- a trial, from inside its job ------------------------------------------------------------------------------
def open_trial(sweeper: DictConfig, number: int) -> optuna.Trial:
    """Trial `number` of the sweeper's study, opened from its storage with the search's pruner."""
    storage = open_storage(sweeper.storage, sweeper.study_name)
    # The job only reports and asks the pruner; it never samples, so the cheapest sampler will do.
    study = optuna.load_study(
        study_name=sweeper.study_name,
        storage=storage,
        pruner=build_pruner(sweeper.pruner),
        sampler=optuna.samplers.RandomSampler(),
    )
    return reopen_trial(study, number)
