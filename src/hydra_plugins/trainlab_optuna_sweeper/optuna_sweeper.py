"""The sweeper: ask the study for `n_jobs` trials, launch them as one batch of jobs, tell it how each ended; or,
with `workers=N`, start N workers that share the study and each take the next trial as soon as they are free
(runkit.sweep_workers).

Through Hydra's public Sweeper API, with whichever launcher is configured (basic, joblib, submitit). The job
number is the trial's number and begins the job's folder (`<number>_<its parameters>`), so a resumed search's
new trials get new folders, and a job finds its trial (for pruning) by its number. Optuna is imported when a search starts, never when
Hydra scans its plugins.
"""

import logging
import math
import os
import sys
import time
from pathlib import Path
from typing import Any, NoReturn

from hydra.core.plugins import Plugins
from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig

from runkit.config import ConfigError, exit_with_error

log = logging.getLogger(__name__)

SLURM_LAUNCHERS = ("slurm", "submitit_slurm")


class OptunaSweeper(Sweeper):
    def __init__(
        self,
        sampler: DictConfig,
        pruner: DictConfig | None,
        direction: str,
        storage: str | None,
        study_name: str,
        n_trials: int | None,
        n_jobs: int,
        params: DictConfig,
        workers: int | None = None,
        worker_timeout: float = 120,
        grid: bool = False,
    ) -> None:
        self.sampler_config, self.pruner_config = sampler, pruner
        self.direction, self.storage, self.study_name = direction, storage, study_name
        self.n_trials, self.n_jobs, self.params = n_trials, n_jobs, params
        self.workers, self.worker_timeout, self.grid = workers, worker_timeout, grid

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        self.config = config
        self.launcher = Plugins.instance().instantiate_launcher(
            hydra_context=hydra_context, task_function=task_function, config=config
        )

    def sweep(self, arguments: list[str]) -> None:
        try:
            study, space = self.open_study(arguments)
        except ConfigError as error:  # a mistake in the search's settings: one line, exit code 2, nothing run
            exit_with_error(error)
        from runkit.sweep_workers import worker_name

        if self.workers is None:
            self.run_trials(study, space)
        elif worker_name() is None:
            self.start_workers()
        else:
            self.work(study, space)

    def open_study(self, arguments: list[str]) -> tuple[Any, Any]:
        import optuna

        from hydra_plugins.trainlab_optuna_sweeper._search_space import grid_of, search_space
        from runkit.search import (
            build_pruner,
            build_sampler,
            open_storage,
            prunes,
            unopenable_study,
            warn_if_sqlite_shared,
        )
        from runkit.sweep_progress import record_search
        from runkit.sweep_workers import worker_name

        self.check_settings(prunes(self.pruner_config))
        several_writers = self.workers is not None or (self.n_jobs > 1 and self.launcher_name() != "basic")
        if several_writers and worker_name() is None:  # said once, by the command, not again by each worker
            warn_if_sqlite_shared(self.storage)
        space = search_space(dict(self.params or {}), arguments)
        combinations = grid_of(space) if self.grid else []
        if self.grid:  # every combination once: n_trials null is all of them
            self.n_trials = self.n_trials or len(combinations)
        elif self.n_trials is None:
            raise ConfigError("hydra.sweeper.n_trials=null counts a grid's combinations; set a number of trials.")
        optuna.logging.set_verbosity(optuna.logging.WARNING)  # the sweeper logs each trial itself
        sampler, pruner = build_sampler(self.sampler_config), build_pruner(self.pruner_config)
        try:
            study = optuna.create_study(
                study_name=self.study_name,
                storage=open_storage(self.storage, self.study_name),
                sampler=sampler,
                pruner=pruner,
                direction=self.direction,
                load_if_exists=True,  # the same command carries on a stopped search
            )
        except ConfigError:
            raise
        except Exception as error:  # a damaged file or a database that refuses: the study is left as it is
            reason = f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"
            raise ConfigError(unopenable_study(self.storage, reason)) from error
        if combinations and not study.get_trials(deepcopy=False) and worker_name() is None:
            for params in combinations:  # a new grid's queue, in the order a basic sweep runs its jobs
                study.enqueue_trial(params)
        if worker_name() is None:  # the search's own command: where trainlab-summarize finds the study
            record_search(Path(self.config.hydra.sweep.dir), self.study_name, self.storage, self.n_trials)
        if self.workers is not None:  # workers look after the trials left running: runkit.sweep_workers
            return study, space
        stale = [t.number for t in study.get_trials(deepcopy=False, states=[optuna.trial.TrialState.RUNNING])]
        for number in stale:  # left running by a search that was killed: they will never report
            study.tell(number, state=optuna.trial.TrialState.FAIL)
        done = len(finished(study))
        if done or stale:
            log.info(
                "Resuming study %s: %d of %d trials finished%s.",
                self.study_name,
                done,
                self.n_trials,
                f", trials {stale} left running by a stopped search marked failed" if stale else "",
            )
        return study, space

    def check_settings(self, pruning: bool) -> None:
        if self.direction not in ("minimize", "maximize"):
            raise ConfigError(f"hydra.sweeper.direction={self.direction} is not a direction; use minimize or maximize.")
        for key in ("n_trials", "n_jobs", "workers", "worker_timeout"):
            if getattr(self, key) is not None and getattr(self, key) < 1:
                raise ConfigError(f"hydra.sweeper.{key}={getattr(self, key)} must be at least 1.")
        metric = self.config.get("optimized_metric")
        if not metric:
            raise ConfigError(
                "optimized_metric is not set, so trials have no objective; set e.g. optimized_metric=val/loss."
            )
        if not pruning:
            return
        if not str(metric).startswith("val/"):
            raise ConfigError(
                f"hydra.sweeper.pruner needs an objective logged after every validation epoch, but "
                f"optimized_metric={metric} is not a val/ metric; use e.g. optimized_metric=val/loss, or hydra/sweeper/pruner=none."
            )
        # The launcher chosen by name: only Hydra's `basic` runs the jobs in this process.
        if self.storage is None and self.launcher_name() != "basic":
            raise ConfigError(
                "hydra.sweeper.storage=null keeps the study in this process, where jobs of another launcher cannot "
                "report to the pruner; set hydra.sweeper.storage to a file, e.g. hydra.sweeper.storage=${hydra.sweep.dir}/optuna.journal."
            )

    def launcher_name(self) -> str:
        return str(self.config.hydra.runtime.choices.get("hydra/launcher"))

    def check_workers_settings(self) -> None:
        if self.storage is None:
            raise ConfigError(
                "hydra.sweeper.workers needs a study every worker can open, but hydra.sweeper.storage=null keeps it "
                "in one process; set hydra.sweeper.storage to a file, e.g. hydra.sweeper.storage=${hydra.sweep.dir}/optuna.journal."
            )

    def start_workers(self) -> None:
        """Start the workers: on this machine, waiting for them; on SLURM, submitted, and this command ends."""
        from runkit.process.ddp import COMMAND_AT_START
        from runkit.sweep_workers import start_local_workers, wait_for

        try:
            self.check_workers_settings()
        except ConfigError as error:
            exit_with_error(error)
        sweep_dir = Path(self.config.hydra.sweep.dir).resolve()
        if self.launcher_name() in SLURM_LAUNCHERS:
            self.submit_workers(sweep_dir, COMMAND_AT_START[1:])
        log.info(
            "Search %s: %d workers on this machine share the study, each taking the next trial when it is free.",
            self.study_name,
            self.workers,
        )
        codes = wait_for(start_local_workers(self.workers, sweep_dir, COMMAND_AT_START[1:]))
        stopped = [f"worker {index} (exit {code})" for index, code in enumerate(codes) if code != 0]
        if stopped:
            log.warning(
                "Not every worker ended cleanly: %s; run the command again to finish the search.", ", ".join(stopped)
            )

    def submit_workers(self, sweep_dir: Path, arguments: list[str]) -> NoReturn:
        """The workers as one SLURM array; then this command ends, and they go on without it."""
        from runkit.runs.commands import program
        from runkit.sweep_workers import record_submitted, worker_command

        submit = getattr(self.launcher, "submit_workers", None)
        if submit is None:
            exit_with_error(
                ConfigError(
                    f"hydra.sweeper.workers on SLURM needs trainlab's SLURM launcher, not hydra/launcher="
                    f"{self.launcher_name()}; use hydra/launcher=slurm."
                )
            )
        sweep_dir.mkdir(parents=True, exist_ok=True)
        array = submit(worker_command(sweep_dir, arguments), self.workers)
        record_submitted(sweep_dir, array)
        print(f"Submitted {self.workers} workers to SLURM as job array {array}; they go on after this command ends.")
        print(f"Sweep folder: {sweep_dir}")
        print(f"Follow it: {program('trainlab-summarize')} {sweep_dir}")
        sys.exit(0)  # Hydra's end-of-sweep report would count jobs that have not started yet

    def work(self, study: Any, space: Any) -> None:
        """One worker: take the next trial, run it here, tell the study; until the study holds n_trials."""
        from runkit.sweep_workers import beating, this_worker

        sweep_dir = Path(self.config.hydra.sweep.dir)
        worker = this_worker()
        with beating(sweep_dir, worker, self.worker_timeout):
            while (trial := self.next_trial(study, space, sweep_dir, worker)) is not None:
                self.run_trial(study, space, trial, sweep_dir)

    def next_trial(self, study: Any, space: Any, sweep_dir: Path, worker: str) -> Any:
        """The next trial for this worker, or None when the search has all it needs. With nothing to ask while
        others' trials still run, the worker waits, to take over any of them whose worker stops."""
        from optuna.trial import TrialState

        from runkit.sweep_workers import JOB, WORKER, counted, queue_lock, still_open, take_over_lost_trials

        while True:
            with queue_lock(sweep_dir):
                take_over_lost_trials(study, sweep_dir, self.worker_timeout)
                queued = study.get_trials(deepcopy=False, states=[TrialState.WAITING])
                if queued or len(counted(study)) < self.n_trials:
                    trial = study.ask(space.distributions)
                    trial.set_user_attr(WORKER, worker)
                    trial.set_user_attr(JOB, trial.user_attrs.get(JOB, trial.number))
                    return trial
                if not still_open(study):
                    return None
            time.sleep(min(5.0, self.worker_timeout / 4))

    def run_trial(self, study: Any, space: Any, trial: Any, sweep_dir: Path) -> None:
        import optuna

        from runkit.sweep_workers import JOB, TAKES_OVER, WORKER_TRIAL_VARIABLE

        job, taken_over = trial.user_attrs[JOB], trial.user_attrs.get(TAKES_OVER)
        overrides = space.overrides(trial.params)
        took = f", taking over trial {taken_over} in its job folder" if taken_over is not None else ""
        log.info("Trial %d runs as job #%d%s:", trial.number, job, took)  # the launcher lists its overrides
        os.environ[WORKER_TRIAL_VARIABLE] = str(trial.number)  # the trial this job reports to, for pruning
        (result,) = self.launcher.launch([overrides], initial_job_idx=job)
        state, value = outcome(result)
        try:
            study.tell(trial, value if state == optuna.trial.TrialState.COMPLETE else None, state=state)
        except (RuntimeError, ValueError) as error:  # another worker took it over meanwhile: its result stands
            log.warning(
                "Trial %d was taken over by another worker meanwhile (%s); its result is theirs.", trial.number, error
            )
        if taken_over is not None and result.hydra_cfg is not None:
            note_takeover(Path(result.hydra_cfg.hydra.runtime.output_dir), trial.number, taken_over)

    def run_trials(self, study: Any, space: Any) -> None:
        import optuna

        while (remaining := self.n_trials - len(finished(study))) > 0:
            batch = [study.ask(space.distributions) for _ in range(min(self.n_jobs, remaining))]
            numbers = [trial.number for trial in batch]
            if numbers != list(range(numbers[0], numbers[0] + len(numbers))):
                raise RuntimeError(
                    f"Study {self.study_name} numbered this batch's trials {numbers}: another process is adding "
                    "trials to it. Run one search per study, with hydra.sweeper.n_jobs for parallel trials."
                )
            overrides = [space.overrides(trial.params) for trial in batch]
            log.info(said_of_batch(numbers))  # the launcher lists each job's overrides, once
            returns = self.launcher.launch(overrides, initial_job_idx=numbers[0])
            for trial, job in zip(batch, returns, strict=True):
                state, value = outcome(job)
                study.tell(trial, value if state == optuna.trial.TrialState.COMPLETE else None, state=state)
        best = [t for t in finished(study) if t.state == optuna.trial.TrialState.COMPLETE]
        if best:
            log.info("Best trial %d: value %s, %s", study.best_trial.number, study.best_value, study.best_params)


def said_of_batch(numbers: list[int]) -> str:
    """The line before a batch of trials is launched: each trial's job has its number."""
    if len(numbers) == 1:
        return f"Trial {numbers[0]} runs as job #{numbers[0]}:"
    return f"Trials {numbers[0]}-{numbers[-1]} run as jobs #{numbers[0]}-#{numbers[-1]}:"


def note_takeover(job_dir: Path, trial: int, lost: int) -> None:
    """Record in the job's status.yaml that this attempt took over a trial whose worker stopped."""
    from omegaconf import OmegaConf

    from runkit.runs.status import STATUS_FILE, read_status

    status = read_status(job_dir)
    status["taken_over"] = f"trial {trial} took over trial {lost}, whose worker stopped, in this job folder"
    OmegaConf.save(OmegaConf.create(status), job_dir / STATUS_FILE)


def finished(study: Any) -> list[Any]:
    """The trials that count towards n_trials: complete, pruned or failed (those of a resumed search too)."""
    from optuna.trial import TrialState

    return study.get_trials(deepcopy=False, states=[TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL])


def outcome(job: Any) -> tuple[Any, float | None]:
    """How a trial's job ended, as an Optuna trial state and objective value."""
    from hydra.core.utils import JobStatus
    from optuna.trial import TrialState

    from runkit.callbacks.optuna_trial import TrialPruned

    if job.status != JobStatus.COMPLETED:
        try:
            _ = job.return_value  # a failed job's return_value raises the job's exception
        except Exception as error:
            log.warning("Job %s failed: %s", job.hydra_cfg.hydra.job.num if job.hydra_cfg else "?", error)
        return TrialState.FAIL, None
    value = job.return_value
    if isinstance(value, TrialPruned):
        return TrialState.PRUNED, None
    try:
        value = float(value)
    except (TypeError, ValueError):
        return TrialState.FAIL, None  # the job recorded why in its status.yaml
    return (TrialState.COMPLETE, value) if math.isfinite(value) else (TrialState.FAIL, None)
