"""hparams_search=optuna: the composed search, its SQLite study, and a search stopped and resumed."""

from pathlib import Path

import optuna
import pytest
import yaml
from hydra import compose
from omegaconf import OmegaConf

from tests.helpers.config import hydra_context
from tests.helpers.process import run_script
from tests.helpers.sweeps import TINY_RUN
from trainlab.search import ResumableTPESampler, sqlite_storage

SEARCHED = ("optimizer.lr", "optimizer.weight_decay", "model.net.dropout")


def test_optuna_search_composes_with_a_seeded_tpe_sampler_and_a_study_file() -> None:
    with hydra_context():
        cfg = compose(
            "train", overrides=["hparams_search=optuna", "hydra.sweep.dir=/tmp/sweep"], return_hydra_config=True
        )
    sweeper = cfg.hydra.sweeper
    assert sweeper._target_ == "hydra_plugins.hydra_optuna_sweeper.optuna_sweeper.OptunaSweeper"
    assert sweeper.sampler._target_ == "trainlab.search.ResumableTPESampler"
    assert sweeper.sampler.seed == 12345
    assert sweeper.storage.path == "/tmp/sweep/optuna.db"
    assert sweeper.study_name == "train_optuna"
    assert sweeper.direction == "minimize" and cfg.optimized_metric == "val/loss"
    # The search space names keys that exist in the composed run config.
    assert set(sweeper.params) == set(SEARCHED)
    for key in SEARCHED:
        assert OmegaConf.select(cfg, key) is not None


def test_study_file_is_created_in_a_new_folder_and_read_back(tmp_path: Path) -> None:
    url = sqlite_storage(str(tmp_path / "new_sweep" / "optuna.db"))
    assert url == f"sqlite:///{tmp_path / 'new_sweep' / 'optuna.db'}"
    study = optuna.create_study(study_name="s", storage=url)
    study.optimize(lambda trial: trial.suggest_float("x", 0, 1), n_trials=2)
    assert len(optuna.load_study(study_name="s", storage=url).trials) == 2


def propose(storage: str, n_trials: int, sampler: optuna.samplers.BaseSampler) -> None:
    study = optuna.create_study(study_name="s", storage=storage, sampler=sampler, load_if_exists=True)
    study.optimize(lambda trial: (trial.suggest_float("x", -1, 1) - 0.3) ** 2, n_trials=n_trials)


def proposals(storage: str) -> list[float]:
    return [trial.params["x"] for trial in optuna.load_study(study_name="s", storage=storage).trials]


@pytest.mark.parametrize("n_startup_trials", [2, 10])  # resumed in TPE's phase, and in its random phase
def test_resumed_search_goes_on_where_it_stopped(n_startup_trials: int, tmp_path: Path) -> None:
    whole, resumed = (sqlite_storage(str(tmp_path / name)) for name in ("whole.db", "resumed.db"))
    propose(whole, 5, ResumableTPESampler(seed=7, n_startup_trials=n_startup_trials))
    propose(resumed, 3, ResumableTPESampler(seed=7, n_startup_trials=n_startup_trials))  # stopped after 3 ...
    propose(resumed, 2, ResumableTPESampler(seed=7, n_startup_trials=n_startup_trials))  # ... resumed anew
    assert proposals(resumed) == proposals(whole)
    assert len(set(proposals(resumed))) == 5


def test_plain_seeded_tpe_would_repeat_its_first_trials_on_resume(tmp_path: Path) -> None:
    """Why trainlab seeds per trial: Optuna's seeded TPE restarts its random stream in every process."""
    resumed = sqlite_storage(str(tmp_path / "resumed.db"))
    propose(resumed, 3, optuna.samplers.TPESampler(seed=7))
    propose(resumed, 2, optuna.samplers.TPESampler(seed=7))
    assert proposals(resumed)[3:] == proposals(resumed)[:2]


@pytest.mark.slow
def test_optuna_sweep_stopped_after_three_trials_resumes_to_five(tmp_path: Path) -> None:
    short = [*TINY_RUN, "trainer.max_epochs=1", f"paths.log_dir={tmp_path / 'logs'}"]
    first, second = tmp_path / "first", tmp_path / "second"
    result = run_script(
        "train",
        ["-m", "hparams_search=optuna", "hydra.sweeper.n_trials=3", f"hydra.sweep.dir={first}", *short],
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    study_file = first / "optuna.db"
    assert study_file.is_file()
    storage = f"sqlite:///{study_file}"
    assert len(optuna.load_study(study_name="train_optuna", storage=storage).trials) == 3

    result = run_script(
        "train",
        [
            "-m",
            "hparams_search=optuna",
            "hydra.sweeper.n_trials=2",
            f"hydra.sweeper.storage.path={study_file}",
            f"hydra.sweep.dir={second}",
            *short,
        ],
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    trials = optuna.load_study(study_name="train_optuna", storage=storage).trials
    assert [trial.state for trial in trials] == [optuna.trial.TrialState.COMPLETE] * 5
    # Each trial's parameters are the overrides of one job folder, and its value is what that job recorded.
    jobs = [first / str(n) for n in range(3)] + [second / str(n) for n in range(2)]
    for trial, job in zip(trials, jobs, strict=True):
        overrides = yaml.safe_load((job / ".hydra" / "overrides.yaml").read_text())
        for key in SEARCHED:
            assert f"{key}={trial.params[key]}" in overrides
        assert trial.value == pytest.approx(yaml.safe_load((job / "status.yaml").read_text())["value"])
    # The resumed trials explore new points instead of repeating the first ones.
    assert len({trial.params["optimizer.lr"] for trial in trials}) == 5


@pytest.mark.slow
def test_failed_trial_is_marked_failed_and_the_search_goes_on(tmp_path: Path) -> None:
    sweep_dir = tmp_path / "search"
    # optimizer.lr=-1 fails validation inside the job; with this seed trial 3 draws it.
    result = run_script(
        "train",
        [
            "-m",
            "hparams_search=optuna",
            "hydra.sweeper.n_trials=4",
            "optimizer=sgd",
            "optimizer.lr=choice(0.01,-1)",
            f"hydra.sweep.dir={sweep_dir}",
            *TINY_RUN,
            "trainer.max_epochs=1",
            f"paths.log_dir={tmp_path / 'logs'}",
        ],
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    trials = optuna.load_study(study_name="train_optuna", storage=f"sqlite:///{sweep_dir / 'optuna.db'}").trials
    assert len(trials) == 4
    for trial in trials:
        status = yaml.safe_load((sweep_dir / str(trial.number) / "status.yaml").read_text())
        if trial.params["optimizer.lr"] == -1:
            assert trial.state == optuna.trial.TrialState.FAIL
            assert {key: status[key] for key in ("status", "error")} == {
                "status": "failed",
                "error": "optimizer.lr=-1.0 is out of range: expected a learning rate > 0; use a small positive value, e.g. optimizer.lr=0.001.",
            }
        else:
            assert trial.state == optuna.trial.TrialState.COMPLETE
            assert trial.value == pytest.approx(status["value"])
    assert {trial.state for trial in trials} == {optuna.trial.TrialState.FAIL, optuna.trial.TrialState.COMPLETE}
