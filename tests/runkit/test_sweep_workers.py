"""hydra.sweeper.workers=N: N worker processes share one journal-file study, each taking the next trial when it
is free; a trial whose worker is killed is taken over and resumed from its last.ckpt."""

import os
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import optuna
import pytest
import yaml
from optuna.trial import TrialState

from runkit.config import ConfigError
from runkit.optional import is_installed
from runkit.runs.reading import read_scalars
from runkit.search import open_storage
from runkit.sweep_workers import JOB, TAKES_OVER, WORKER, counted, is_alive, take_over_lost_trials, this_worker
from tests.runkit.helpers.process import BIN, ROOT, run_script
from tests.runkit.helpers.sweeps import TINY_RUN

STUDY = "train_optuna"


def search_args(sweep_dir: Path, logs: Path, *overrides: str, search: str = "optuna") -> list[str]:
    sweep = [f"hydra.sweep.dir={sweep_dir}", f"paths.log_dir={logs}"]
    return ["-m", f"hparams_search={search}", *TINY_RUN, *sweep, *overrides]


def study_of(sweep_dir: Path) -> optuna.Study:
    return optuna.load_study(study_name=STUDY, storage=open_storage(str(sweep_dir / "optuna.journal"), STUDY))


def job_folders(sweep_dir: Path) -> dict[int, Path]:
    return {int(path.name[:3]): path for path in sweep_dir.iterdir() if path.name[:3].isdigit()}


def status_of(job: Path) -> dict:
    return yaml.safe_load((job / "status.yaml").read_text())


def start(args: list[str], cwd: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    command = [str(BIN / "trainlab-train"), *args]
    return subprocess.Popen(command, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def test_a_worker_is_alive_while_its_process_runs_and_its_file_is_fresh(tmp_path: Path) -> None:
    me = this_worker()
    (tmp_path / "workers").mkdir()
    assert not is_alive(tmp_path, me, timeout_s=60)  # no file: never started, or ended
    (tmp_path / "workers" / f"{me}.alive").touch()
    assert is_alive(tmp_path, me, timeout_s=60)
    stale = time.time() - 120
    os.utime(tmp_path / "workers" / f"{me}.alive", (stale, stale))
    assert not is_alive(tmp_path, me, timeout_s=60)  # silent for longer than the timeout
    gone = subprocess.Popen(["true"])
    gone.wait()
    dead = me.replace(str(os.getpid()), str(gone.pid))
    (tmp_path / "workers" / f"{dead}.alive").touch()
    assert not is_alive(tmp_path, dead, timeout_s=60)  # on this host, a fresh file of a process that is gone


@pytest.mark.slow
def test_four_workers_share_a_journal_study_and_run_every_trial_once(tmp_path: Path) -> None:
    sweep_dir = tmp_path / "search"
    args = search_args(sweep_dir, tmp_path / "logs", "hydra.sweeper.n_trials=8", "hydra.sweeper.workers=4")
    process = start([*args, "trainer.max_epochs=1"], tmp_path)
    output, _ = process.communicate(timeout=600)
    assert process.returncode == 0, output[-3000:]
    trials = study_of(sweep_dir).trials
    assert [trial.number for trial in trials] == list(range(8))
    assert [trial.state for trial in trials] == [TrialState.COMPLETE] * 8
    assert all(trial.user_attrs[JOB] == trial.number and WORKER in trial.user_attrs for trial in trials)
    folders = job_folders(sweep_dir)
    assert sorted(folders) == list(range(8))  # one folder a trial, none run twice
    assert all(status_of(folder)["status"] == "ok" for folder in folders.values())
    assert "Sweep folder:" in output and "(8 jobs: 8 ok)" in output  # said once, by the command, not by each worker
    assert output.count("Sweep folder:") == 1
    assert not list((sweep_dir / "workers").glob("*.alive"))  # every worker ended and said so


def running_trial_with_a_checkpoint(sweep_dir: Path) -> optuna.trial.FrozenTrial | None:
    """A trial running in its worker with its last.ckpt written: one to kill that worker on."""
    if not (sweep_dir / "optuna.journal").is_file():
        return None
    try:
        trials = study_of(sweep_dir).get_trials(states=[TrialState.RUNNING])
    except KeyError:  # the study is being created
        return None
    folders = job_folders(sweep_dir)
    for trial in trials:
        folder = folders.get(trial.number)
        if WORKER in trial.user_attrs and folder and (folder / "checkpoints" / "last.ckpt").is_file():
            return trial
    return None


@pytest.mark.slow
def test_a_killed_workers_trial_is_taken_over_and_resumed_from_its_last_checkpoint(tmp_path: Path) -> None:
    sweep_dir = tmp_path / "search"
    # Long enough trials (40 short epochs) that the worker is killed in the middle of one.
    args = search_args(sweep_dir, tmp_path / "logs", "hydra.sweeper.n_trials=3", "hydra.sweeper.workers=2")
    process = start([*args, "trainer.max_epochs=40", "callbacks.early_stopping=null"], tmp_path)
    try:
        while (victim := running_trial_with_a_checkpoint(sweep_dir)) is None:
            assert process.poll() is None, process.stdout.read()[-3000:]
            time.sleep(0.1)
        pid = int(victim.user_attrs[WORKER].split("-slurm")[0].rpartition("-")[2])
        os.kill(pid, signal.SIGKILL)
        output, _ = process.communicate(timeout=600)
    finally:
        process.kill()
    assert process.returncode == 0, output[-3000:]
    study = study_of(sweep_dir)
    lost = study.trials[victim.number]
    assert lost.state == TrialState.FAIL
    (taker,) = [trial for trial in study.trials if trial.user_attrs.get(TAKES_OVER) == victim.number]
    assert taker.state == TrialState.COMPLETE and taker.params == victim.params
    assert taker.user_attrs[JOB] == victim.number  # it ran in the lost trial's folder
    assert len(counted(study)) == 3 and all(t.state == TrialState.COMPLETE for t in counted(study))
    folder = job_folders(sweep_dir)[victim.number]
    status = status_of(folder)
    assert status["status"] == "ok"
    assert status["taken_over"] == (
        f"trial {taker.number} took over trial {victim.number}, whose worker stopped, in this job folder"
    )
    # Resumed, not restarted: nothing set aside as a failed attempt, and one val/loss point per epoch, in order.
    assert not list(folder.glob("attempt_*"))
    steps = [step for step, _ in read_scalars(folder)["val/loss"]]
    assert len(steps) == 40 and steps == sorted(set(steps))
    assert f"Trial {victim.number}'s worker" in output and "stopped" in output


@pytest.mark.slow
def test_sqlite_chosen_for_several_workers_is_warned_about_once(tmp_path: Path) -> None:
    sweep_dir = tmp_path / "search"
    storage = f"hydra.sweeper.storage={sweep_dir / 'optuna.db'}"
    args = search_args(sweep_dir, tmp_path / "logs", "hydra.sweeper.n_trials=2", "hydra.sweeper.workers=2", storage)
    process = start([*args, "trainer.max_epochs=1"], tmp_path)
    output, _ = process.communicate(timeout=600)
    assert process.returncode == 0, output[-3000:]
    warning = f"hydra.sweeper.storage={sweep_dir / 'optuna.db'} is SQLite, whose locking is unreliable"
    assert output.count(warning) == 1  # the command says it; its workers do not repeat it


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    """The study URL of make postgres's server: the one running here, else one started for these tests (root on
    Debian only), stopped after them."""
    script = ["bash", str(ROOT / "scripts" / "postgres_server.sh")]
    running = subprocess.run([*script, "url"], capture_output=True, text=True)
    if running.returncode == 0:
        yield running.stdout.strip()
        return
    if os.geteuid() != 0 or not Path("/usr/bin/apt-get").exists():
        pytest.skip("no PostgreSQL server of make postgres runs here, and starting one needs root on Debian")
    subprocess.run([*script, "up"], check=True, timeout=600)
    try:
        yield subprocess.run([*script, "url"], capture_output=True, text=True, check=True).stdout.strip()
    finally:
        subprocess.run([*script, "down"], check=True, timeout=120)


@pytest.mark.slow
@pytest.mark.extras  # the PostgreSQL driver (psycopg) is in the postgres extra
def test_workers_share_a_study_on_a_postgresql_server(postgres_url: str, tmp_path: Path) -> None:
    sweep_dir, study_name = tmp_path / "search", f"search_{uuid.uuid4().hex}"  # the database outlives the test
    settings = [f"hydra.sweeper.storage='{postgres_url}'", f"hydra.sweeper.study_name={study_name}"]
    args = search_args(sweep_dir, tmp_path / "logs", "hydra.sweeper.n_trials=4", "hydra.sweeper.workers=2", *settings)
    process = start([*args, "trainer.max_epochs=1"], tmp_path)
    output, _ = process.communicate(timeout=600)
    assert process.returncode == 0, output[-3000:]
    trials = optuna.load_study(study_name=study_name, storage=postgres_url).trials
    assert [(trial.number, trial.state) for trial in trials] == [(n, TrialState.COMPLETE) for n in range(4)]
    assert sorted(job_folders(sweep_dir)) == list(range(4))
    assert not (sweep_dir / "optuna.journal").exists()  # the study is in the database, not in the folder


@pytest.mark.skipif(is_installed("psycopg"), reason="needs a venv without psycopg, as .venv is")
def test_a_database_url_without_its_driver_is_one_line_that_hides_the_password() -> None:
    with pytest.raises(ConfigError) as error:
        open_storage("postgresql://someone:secret@/studies?host=/tmp", STUDY)
    message = str(error.value)
    assert message.startswith("hydra.sweeper.storage=postgresql://someone:***@/studies")
    assert "needs a database driver that is not installed (No module named 'psycopg')" in message
    assert "secret" not in message and "\n" not in message


@pytest.mark.slow
def test_a_grid_run_by_workers_runs_every_combination_once_in_a_basic_sweeps_order(tmp_path: Path) -> None:
    sweep_dir = tmp_path / "search"
    grid = ["seed=1,2", "optimizer.lr=0.01,0.001", "hydra.sweeper.workers=2", "trainer.max_epochs=1"]
    process = start(search_args(sweep_dir, tmp_path / "logs", *grid, search="grid"), tmp_path)
    output, _ = process.communicate(timeout=600)
    assert process.returncode == 0, output[-3000:]
    names = [folder.name for _, folder in sorted(job_folders(sweep_dir).items())]
    assert names == [
        "000_seed-1_optimizer.lr-0.01",
        "001_seed-1_optimizer.lr-0.001",
        "002_seed-2_optimizer.lr-0.01",
        "003_seed-2_optimizer.lr-0.001",
    ]
    assert "(4 jobs: 4 ok)" in output


def test_a_grid_of_an_interval_is_refused_in_one_line(tmp_path: Path) -> None:
    result = run_script("train", ["-m", "hparams_search=grid", "optimizer.lr=interval(0.001, 0.1)"], cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "Error: optimizer.lr is an interval, which a grid cannot list; give it values, e.g. "
        "optimizer.lr=0.1,0.01 or choice(0.1, 0.01), or a range(...)."
    ]


def test_running_trials_nobody_runs_are_queued_again_and_live_ones_are_left(tmp_path: Path) -> None:
    study = optuna.create_study(study_name=STUDY, storage=open_storage(str(tmp_path / "optuna.journal"), STUDY))
    space = {"x": optuna.distributions.FloatDistribution(0, 1)}
    orphan = study.ask(space)  # left running by a search without workers: no worker recorded
    mine = study.ask(space)
    mine.set_user_attr(WORKER, this_worker())
    (tmp_path / "workers").mkdir()
    (tmp_path / "workers" / f"{this_worker()}.alive").touch()
    take_over_lost_trials(study, tmp_path, timeout_s=60)
    states = {trial.number: trial.state for trial in study.trials}
    assert states == {0: TrialState.FAIL, 1: TrialState.RUNNING, 2: TrialState.WAITING}
    queued = study.trials[2]
    assert queued.user_attrs == {JOB: orphan.number, TAKES_OVER: orphan.number}
    assert [trial.number for trial in counted(study)] == [1, 2]  # the lost one does not count
    assert study.ask(space).params == orphan.params  # the next worker's trial: the same parameters, run again
