"""hparams_search=optuna: trainlab's own Hydra sweeper on current Optuna, its study, resume and pruning."""

import importlib.util
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
import yaml
from hydra import compose
from omegaconf import OmegaConf
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import TrialState

from hydra_plugins.trainlab_optuna_sweeper._search_space import search_space
from runkit.config import ConfigError
from runkit.search import build_pruner, build_sampler, open_storage
from tests.runkit.helpers.config import hydra_context
from tests.runkit.helpers.process import BIN, ROOT, run_script
from tests.runkit.helpers.sweeps import TINY_RUN, job_dir

SEARCHED = ("optimizer.lr", "optimizer.weight_decay", "model.net.dropout")
SAMPLERS = {"tpe": "TPESampler", "random": "RandomSampler", "cmaes": "CmaEsSampler", "gp": "GPSampler"}
PRUNERS = {"none": "NopPruner", "median": "MedianPruner", "successive_halving": "SuccessiveHalvingPruner"}
PRUNERS["hyperband"] = "HyperbandPruner"
# Samplers whose package (cmaes, scipy) is in .venv-extras only.
SAMPLER_OPTIONS = [
    pytest.param(name, marks=pytest.mark.extras) if name in ("cmaes", "gp") else name for name in SAMPLERS
]
STUDY = "train_optuna"


def sweeper_config(*overrides: str):
    with hydra_context():
        cfg = compose(
            "train",
            overrides=["hparams_search=optuna", "hydra.sweep.dir=/tmp/sweep", *overrides],
            return_hydra_config=True,
        )
    return cfg


def study_of(sweep_dir: Path) -> optuna.Study:
    return optuna.load_study(study_name=STUDY, storage=open_storage(str(sweep_dir / "optuna.journal"), STUDY))


def status_of(job: Path) -> dict:
    return yaml.safe_load((job / "status.yaml").read_text())


# --- composition and the search space -----------------------------------------------------------------------
def test_search_composes_with_trainlab_sweeper_a_seeded_sampler_and_a_study_file() -> None:
    cfg = sweeper_config()
    sweeper = cfg.hydra.sweeper
    assert sweeper._target_ == "hydra_plugins.trainlab_optuna_sweeper.optuna_sweeper.OptunaSweeper"
    assert sweeper.sampler.seed is not None  # the same command proposes the same trials
    assert sweeper.storage == "/tmp/sweep/optuna.journal" and sweeper.study_name == STUDY  # in the sweep's own folder
    # The objective goes the right way: a loss down, an accuracy up.
    assert sweeper.direction == ("minimize" if "loss" in cfg.optimized_metric else "maximize")
    # Every searched setting is one the run has.
    assert all(OmegaConf.select(cfg, key) is not None for key in sweeper.params)


@pytest.mark.parametrize("sampler", SAMPLER_OPTIONS)
@pytest.mark.parametrize("pruner", PRUNERS)
def test_each_sampler_and_pruner_composes_and_builds(sampler: str, pruner: str) -> None:
    sweeper = sweeper_config(f"hydra/sweeper/sampler={sampler}", f"hydra/sweeper/pruner={pruner}").hydra.sweeper
    assert sweeper.sampler.seed == sweeper_config().hydra.sweeper.sampler.seed  # the search's seed, for every sampler
    assert type(build_sampler(sweeper.sampler).for_trial(optuna.trial.FixedTrial({}, 0))).__name__ == SAMPLERS[sampler]
    assert type(build_pruner(sweeper.pruner)).__name__ == PRUNERS[pruner]


@pytest.mark.parametrize(("sampler", "package"), [("cmaes", "cmaes"), ("gp", "scipy")])
def test_a_sampler_whose_package_is_missing_is_named_with_where_to_find_it(
    sampler: str, package: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """.venv has neither cmaes nor scipy; in a venv that has them, they are hidden."""
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *args: None if name == package else real_find_spec(name, *args)
    )
    sweeper = sweeper_config(f"hydra/sweeper/sampler={sampler}").hydra.sweeper
    with pytest.raises(ConfigError, match=rf"needs the {package} package, which is not installed in this venv; "):
        build_sampler(sweeper.sampler).for_trial(optuna.trial.FixedTrial({}, 0))


def test_search_space_maps_hydra_sweeps_to_optuna_distributions() -> None:
    space = search_space(
        {
            "optimizer.lr": "tag(log, interval(1e-4, 0.1))",
            "model.net.dropout": "interval(0, 0.5)",
            "model.net.hidden": "tag(log, int, interval(16, 256))",
            "data.batch_size": "choice(32, 64)",
            "trainer.max_epochs": "range(1, 10, 2)",
            "regularizer.l2": "range(0.1, 0.5, 0.1)",
            "seed": 7,
        },
        ["optimizer=sgd,adam", "data.batch_size=16,128", "tags=[a,b]"],  # the command line's sweeps join in
    )
    assert space.distributions == {
        "optimizer.lr": FloatDistribution(1e-4, 0.1, log=True),
        "model.net.dropout": FloatDistribution(0.0, 0.5),
        "model.net.hidden": IntDistribution(16, 256, log=True),
        "data.batch_size": CategoricalDistribution([16, 128]),  # the command line wins
        "trainer.max_epochs": IntDistribution(1, 9, step=2),
        "regularizer.l2": FloatDistribution(0.1, 0.4, step=0.1),
        "optimizer": CategoricalDistribution(["sgd", "adam"]),
    }
    assert space.fixed == ["seed=7", "tags=[a,b]"]
    assert space.overrides({"optimizer": "sgd", "optimizer.lr": 0.01}) == [
        "seed=7",
        "tags=[a,b]",
        "optimizer=sgd",
        "optimizer.lr=0.01",
    ]


def test_a_sweep_outside_the_grammar_is_one_line_naming_the_key() -> None:
    with pytest.raises(
        ConfigError, match=r"^hydra.sweeper.params.optimizer.lr=interval\(0.1 is not in Hydra's override"
    ):
        search_space({"optimizer.lr": "interval(0.1"}, [])


def test_study_storage_is_a_file_a_url_or_memory(tmp_path: Path) -> None:
    sqlite = open_storage(str(tmp_path / "new" / "optuna.db"), "s")
    journal = open_storage(str(tmp_path / "new" / "optuna.journal"), "s")
    for storage in (sqlite, journal, open_storage(None, "s"), open_storage(f"sqlite:///{tmp_path / 'u.db'}", "s")):
        study = optuna.create_study(study_name="s", storage=storage, load_if_exists=True)
        study.optimize(lambda trial: trial.suggest_float("x", 0, 1), n_trials=2)
        assert len(optuna.load_study(study_name="s", storage=storage).trials) == 2
    assert (tmp_path / "new" / "optuna.db").is_file() and (tmp_path / "new" / "optuna.journal").is_file()
    with pytest.raises(ConfigError, match=r"^hydra.sweeper.storage=.*study.txt is neither a study file"):
        open_storage(str(tmp_path / "study.txt"), "s")


# --- seeded samplers: a resumed search proposes what an uninterrupted one would ------------------------------
def propose(storage: str, n_trials: int, sampler: dict) -> None:
    study = optuna.create_study(study_name="s", storage=storage, sampler=build_sampler(sampler), load_if_exists=True)
    study.optimize(lambda trial: (trial.suggest_float("x", -1, 1) - 0.3) ** 2, n_trials=n_trials)


def proposals(storage: str) -> list[float]:
    return [trial.params["x"] for trial in optuna.load_study(study_name="s", storage=storage).trials]


@pytest.mark.parametrize(
    "sampler",
    [
        {"_target_": "optuna.samplers.TPESampler", "seed": 7, "n_startup_trials": 2},  # resumed in TPE's phase
        {"_target_": "optuna.samplers.TPESampler", "seed": 7, "n_startup_trials": 10},  # ... in its random phase
        {"_target_": "optuna.samplers.RandomSampler", "seed": 7},
        pytest.param(
            {"_target_": "optuna.samplers.CmaEsSampler", "seed": 7, "n_startup_trials": 1}, marks=pytest.mark.extras
        ),
    ],
    ids=["tpe", "tpe_startup", "random", "cmaes"],
)
def test_resumed_search_goes_on_where_it_stopped(sampler: dict, tmp_path: Path) -> None:
    whole, resumed = (f"sqlite:///{tmp_path / name}" for name in ("whole.db", "resumed.db"))
    propose(whole, 6, sampler)
    propose(resumed, 3, sampler)  # stopped after 3 ...
    propose(resumed, 3, sampler)  # ... and resumed by a new sampler, as a new process would
    assert proposals(resumed) == proposals(whole)
    assert len(set(proposals(resumed))) == 6


def test_plain_seeded_tpe_would_repeat_its_first_trials_on_resume(tmp_path: Path) -> None:
    """Why trainlab seeds per trial: Optuna's seeded TPE restarts its random stream in every process."""
    resumed = f"sqlite:///{tmp_path / 'resumed.db'}"
    for _ in range(2):
        study = optuna.create_study(
            study_name="s", storage=resumed, sampler=optuna.samplers.TPESampler(seed=7), load_if_exists=True
        )
        study.optimize(lambda trial: trial.suggest_float("x", -1, 1) ** 2, n_trials=2)
    assert proposals(resumed)[2:] == proposals(resumed)[:2]


# --- mistakes: one line, exit code 2, no job run --------------------------------------------------------------
@pytest.mark.parametrize(
    ("overrides", "error"),
    [
        (
            ["hydra.sweeper.params={optimizer.lr:'interval(0.1'}"],
            "Error: hydra.sweeper.params.optimizer.lr=interval(0.1 is not in Hydra's override grammar",
        ),
        (
            ["hydra.sweeper.sampler._target_=optuna.samplers.NoSuchSampler"],
            "Error: hydra.sweeper.sampler._target_=optuna.samplers.NoSuchSampler is not a class that can be imported; "
            "check its spelling and that its package is installed.",
        ),
        (
            ["hydra/sweeper/pruner=median", "optimized_metric=test/acc"],
            "Error: hydra.sweeper.pruner needs an objective logged after every validation epoch, but optimized_metric=test/acc is not a val/ metric",
        ),
        (
            ["hydra/sweeper/pruner=median", "hydra.sweeper.storage=null", "hydra/launcher=joblib"],
            "Error: hydra.sweeper.storage=null keeps the study in this process",
        ),
    ],
    ids=["grammar", "sampler", "pruner_metric", "memory_joblib"],
)
def test_search_mistake_is_one_line_and_exit_code_2(overrides: list[str], error: str, tmp_path: Path) -> None:
    result = run_script(
        "train", ["-m", "hparams_search=optuna", f"hydra.sweep.dir={tmp_path / 's'}", *overrides], cwd=tmp_path
    )
    assert result.returncode == 2, result.stderr[-3000:]
    assert result.stderr.strip().splitlines()[-1].startswith(error), result.stderr[-3000:]
    assert not any((tmp_path / "s").glob("*/status.yaml"))


@pytest.mark.parametrize("search", ["optuna", "grid"])
def test_a_search_without_multirun_is_refused_with_the_fix(search: str, tmp_path: Path) -> None:
    """Hydra ignores a sweeper outside -m: without this check the command would train one ordinary run."""
    logs = tmp_path / "logs"
    result = run_script("train", [f"hparams_search={search}", f"paths.log_dir={logs}"], cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"Error: hparams_search={search} runs a search only as a multirun, and without -m this would be one "
        f"ordinary run; add -m: trainlab-train -m hparams_search={search} ..."
    ]
    assert not list(logs.rglob("status.yaml"))  # nothing trained


# --- real searches ---------------------------------------------------------------------------------------------
def search(sweep_dir: Path, *overrides: str, tmp_path: Path, epochs: int = 1) -> subprocess.CompletedProcess:
    args = ["-m", "hparams_search=optuna", f"hydra.sweep.dir={sweep_dir}", *TINY_RUN, f"trainer.max_epochs={epochs}"]
    result = run_script("train", [*args, f"paths.log_dir={tmp_path / 'logs'}", *overrides], cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


@pytest.mark.slow
def test_failed_trial_is_marked_failed_and_the_search_goes_on(tmp_path: Path) -> None:
    sweep_dir = tmp_path / "search"
    # optimizer.lr=-1 fails validation inside the job.
    search(sweep_dir, "hydra.sweeper.n_trials=5", "optimizer=sgd", "optimizer.lr=choice(0.01,-1)", tmp_path=tmp_path)
    trials = study_of(sweep_dir).trials
    assert len(trials) == 5
    for trial in trials:
        status = status_of(job_dir(sweep_dir, trial.number))
        if trial.params["optimizer.lr"] == -1:
            assert trial.state == TrialState.FAIL and status["status"] == "failed"
            assert status["error"].startswith("optimizer.lr=-1.0 is out of range")
        else:
            assert trial.state == TrialState.COMPLETE and trial.value == pytest.approx(status["value"])
    assert {trial.state for trial in trials} == {TrialState.FAIL, TrialState.COMPLETE}


@pytest.mark.slow
def test_search_stopped_and_run_again_proposes_what_an_uninterrupted_one_does(tmp_path: Path) -> None:
    whole, resumed = tmp_path / "whole", tmp_path / "resumed"
    console = search(whole, "hydra.sweeper.n_trials=4", tmp_path=tmp_path)
    lines = (console.stdout + console.stderr).splitlines()
    for trial in study_of(whole).trials:  # each trial's overrides are on the console once, on its job's line
        drawn = " ".join(f"{key}={trial.params[key]}" for key in SEARCHED)
        (said,) = [line for line in lines if drawn in line]
        assert f"#{trial.number} : " in said and said.endswith(drawn)
    search(resumed, "hydra.sweeper.n_trials=2", tmp_path=tmp_path)
    search(resumed, "hydra.sweeper.n_trials=4", tmp_path=tmp_path)  # the same command, more trials
    assert [t.params for t in study_of(resumed).trials] == [t.params for t in study_of(whole).trials]
    # Each trial's parameters are the overrides of its own job folder, and its value what that job recorded.
    for trial in study_of(resumed).trials:
        job = job_dir(resumed, trial.number)
        overrides = yaml.safe_load((job / ".hydra" / "overrides.yaml").read_text())
        assert all(f"{key}={trial.params[key]}" in overrides for key in SEARCHED)
        assert trial.value == pytest.approx(status_of(job)["value"])
        assert len(list(job.glob("run_info*.yaml"))) == 1  # finished trials were not run again


@pytest.mark.slow
def test_pruned_trials_under_joblib_are_pruned_in_the_study_the_status_and_the_summary(tmp_path: Path) -> None:
    sweep_dir = tmp_path / "search"
    # lr=1e-6 barely learns: once a trial with lr=0.05 has finished, the median pruner stops such a trial
    # after its first epoch. Trials run two at a time in other processes and reach the study through its file.
    search(
        sweep_dir,
        "hydra/launcher=joblib",
        "hydra.launcher.n_jobs=2",
        "hydra.sweeper.n_jobs=2",
        "hydra.sweeper.n_trials=6",
        "hydra/sweeper/pruner=median",
        "hydra.sweeper.pruner.n_startup_trials=1",
        "hydra.sweeper.params={optimizer.weight_decay:0.0,model.net.dropout:0.0}",  # plain values: fixed
        "optimizer.lr=choice(0.05,0.000001)",  # the command line's sweep joins the search
        tmp_path=tmp_path,
        epochs=3,
    )
    trials = study_of(sweep_dir).trials
    assert len(trials) == 6
    pruned = [trial for trial in trials if trial.state == TrialState.PRUNED]
    assert pruned, [(t.number, t.params, t.state) for t in trials]
    for trial in pruned:
        assert trial.params["optimizer.lr"] == 1e-6 and list(trial.intermediate_values) == [0]
        status = status_of(job_dir(sweep_dir, trial.number))
        assert (status["status"], status["epoch"]) == ("pruned", 1)  # after the first epoch, counted from 1
        assert status["value"] == pytest.approx(trial.intermediate_values[0])
    assert all(t.state == TrialState.COMPLETE for t in trials if t.params["optimizer.lr"] == 0.05)
    summary = run_script("summarize", [str(sweep_dir), "--no-plot"], cwd=tmp_path)
    header, _, *rows = [line.strip("| ").split(" | ") for line in summary.stdout.splitlines() if line.startswith("|")]
    statuses = [row[header.index("status")] for row in rows]
    assert statuses == sorted(statuses, key=["ok", "pruned", "failed"].index)  # finished trials first
    assert statuses.count("pruned") == len(pruned)


@pytest.mark.slow
def test_search_killed_with_sigkill_continues_its_study_to_n_trials(tmp_path: Path) -> None:
    sweep_dir = tmp_path / "search"
    args = ["-m", "hparams_search=optuna", "hydra.sweeper.n_trials=4", f"hydra.sweep.dir={sweep_dir}", *TINY_RUN]
    args += ["trainer.max_epochs=2", f"paths.log_dir={tmp_path / 'logs'}"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        [str(BIN / "trainlab-train"), *args],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    storage = str(sweep_dir / "optuna.journal")
    deadline = time.monotonic() + 240
    try:
        while time.monotonic() < deadline and process.poll() is None:  # a finished trial and the next one running
            states = [t.state for t in stored_trials(storage)]
            if TrialState.COMPLETE in states and states[-1] == TrialState.RUNNING:
                break
            time.sleep(0.1)
        assert process.poll() is None, "the search ended before it could be killed"
        process.send_signal(signal.SIGKILL)
    finally:
        process.kill()
        process.wait()
    before = stored_trials(storage)
    stale = before[-1].number
    assert before[-1].state == TrialState.RUNNING

    search(sweep_dir, "hydra.sweeper.n_trials=4", tmp_path=tmp_path, epochs=2)  # the same command
    after = study_of(sweep_dir).trials
    assert len(after) == 4
    assert after[stale].state == TrialState.FAIL
    assert [t.state for t in after if t.number != stale] == [TrialState.COMPLETE] * 3
    for old in before[:-1]:  # finished trials kept, not run again
        assert after[old.number].value == old.value
        assert len(list(job_dir(sweep_dir, old.number).glob("run_info*.yaml"))) == 1


def stored_trials(storage: str) -> list[optuna.trial.FrozenTrial]:
    """The trials of the study in the journal file `storage`, as they stand ([] before the search creates it)."""
    if not Path(storage).is_file():
        return []
    try:
        return optuna.load_study(study_name=STUDY, storage=open_storage(storage, STUDY)).trials
    except Exception:  # the study is not created yet
        return []


# --- the plugin is found, installed editable or not -------------------------------------------------------------
FIND_SWEEPER = """
import sys
from hydra.core.plugins import Plugins
from hydra.plugins.sweeper import Sweeper
found = [c for c in Plugins.instance().discover(Sweeper) if c.__name__ == "OptunaSweeper"]
print(sys.modules[found[0].__module__].__file__ if found else "not found")
"""


def test_sweeper_is_found_in_the_editable_install() -> None:
    result = subprocess.run([sys.executable, "-c", FIND_SWEEPER], cwd="/", capture_output=True, text=True, check=True)
    assert Path(result.stdout.strip()).is_relative_to(ROOT / "src" / "hydra_plugins" / "trainlab_optuna_sweeper")


def test_sweeper_is_found_in_a_plain_install(tmp_path: Path) -> None:
    project = tmp_path / "project"  # built from a copy, so the build writes nothing into the working tree
    project.mkdir()
    for name in ("src", "pyproject.toml", "README.md"):
        subprocess.run(["cp", "-r", str(ROOT / name), str(project / name)], check=True)
    target = tmp_path / "site"
    install = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation", "--target"]
    subprocess.run([*install, str(target), str(project)], check=True, capture_output=True)
    assert not list(target.glob("*.pth")) and not list(target.glob("__editable__*"))
    site_packages = next(p for p in sys.path if p.endswith("site-packages"))
    # -S: no site module, so no .pth file puts the repository's src/ on the path; only the installed copy is there.
    env = {"PATH": os.environ["PATH"], "PYTHONPATH": f"{target}{os.pathsep}{site_packages}"}
    result = subprocess.run(
        [sys.executable, "-S", "-c", FIND_SWEEPER + "import trainlab; print(trainlab.__file__)"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    sweeper_file, trainlab_file = result.stdout.split()
    assert Path(sweeper_file).is_relative_to(target / "hydra_plugins" / "trainlab_optuna_sweeper")
    assert Path(trainlab_file).is_relative_to(target / "trainlab")
