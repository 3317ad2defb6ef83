"""hydra/launcher=slurm on a real SLURM cluster: sweeps, time limits and requeues, DDP across SLURM tasks.

The cluster is the one `make slurm` starts (one node, its CPUs, accounting off); where none answers and
this is root on Debian, the module starts one itself and stops it after. Each test submits real jobs
and reads SLURM's own record of them (`scontrol show job`).

SLURM warns a job before its time limit (USR2, `signal_delay_s` ahead) at a moment it picks on its own
30-second clock. The test of the time limit itself lets SLURM pick; the tests of what happens after a
warning send it themselves at the moment under test (`scancel --signal=USR2`, which delivers it as
SLURM does). `make slurm` sets cred_expire=5, so a requeued job waits 5 s before it starts again, not 120.
"""

import os
import shlex
import subprocess
from pathlib import Path

import pytest
from optuna.trial import TrialState

from runkit.runs.reading import read_scalars
from runkit.runs.status import read_status
from runkit.sweep_workers import JOB, TAKES_OVER, WORKER, counted, submitted_arrays
from tests.runkit.helpers.process import BIN, ROOT, run_script
from tests.runkit.helpers.runs import TINY_MLP
from tests.runkit.helpers.slurm import (
    can_start_cluster,
    cluster_answers,
    final_record,
    job_ids,
    send_time_limit_warning,
    start_cluster,
    stop_cluster,
    wait_until,
)
from tests.runkit.helpers.sweeps import job_dir, job_dirs
from tests.runkit.test_sweep_workers import running_trial_with_a_checkpoint, study_of

pytestmark = pytest.mark.slurm

# One CPU per job, one torch thread: two jobs run side by side on a 2-core node, and a SLURM job computes
# what the same run computes locally.
SLURM = ["hydra/launcher=slurm", "hydra.launcher.cpus_per_task=1", "extras.num_threads=1"]
# Epochs of 256 steps (about half a second each): long runs whose last.ckpt comes early.
LONG_RUN = [*TINY_MLP, "data.num_train=4096", "data.batch_size=16", "callbacks.early_stopping=null"]
# Where a test sends the warning itself: a 2-minute limit, so that submitit takes the warning for the time
# limit's (with a long limit, a warning long before it is a preemption), and SLURM's own warning 5 s before
# the limit, after these jobs have ended.
WARNED_BY_THE_TEST = ["hydra.launcher.timeout_min=2", "hydra.launcher.signal_delay_s=5"]


@pytest.fixture(scope="module", autouse=True)
def slurm_cluster() -> None:
    """A SLURM cluster that answers: the one running here, else one started for these tests (root only)."""
    if cluster_answers():
        yield
        return
    if not can_start_cluster():
        pytest.skip("no SLURM cluster answers (sinfo) and starting one needs root on Debian: run make slurm as root")
    start_cluster()
    yield
    stop_cluster()


def sweep_args(tmp_path: Path, overrides: tuple[str, ...]) -> list[str]:
    """`-m hydra/launcher=slurm ...` into tmp_path/sweep, with logs in tmp_path/logs."""
    return ["-m", *SLURM, f"hydra.sweep.dir={tmp_path / 'sweep'}", f"paths.log_dir={tmp_path / 'logs'}", *overrides]


def sweep(tmp_path: Path, *overrides: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """A SLURM sweep, to the end."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    return run_script("train", sweep_args(tmp_path, overrides), cwd=tmp_path, timeout=600, env=env)


def start_sweep(tmp_path: Path, *overrides: str) -> subprocess.Popen:
    """A SLURM sweep, started: the test acts on its jobs while it runs."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        [str(BIN / "trainlab-train"), *sweep_args(tmp_path, overrides)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


def finish(process: subprocess.Popen) -> str:
    output = process.communicate(timeout=600)[0].decode()
    assert process.returncode == 0, output[-3000:]
    return output


def val_steps(run: Path) -> list[int]:
    return [step for step, _ in read_scalars(run)["val/loss"]]


def final_values(run: Path) -> dict[str, float]:
    return {tag: curve[-1][1] for tag, curve in read_scalars(run).items() if tag.startswith("test/")}


def test_a_sweep_ends_ok_with_its_folders_and_runs_named_as_in_a_local_sweep(tmp_path: Path) -> None:
    overrides = [*TINY_MLP, "trainer.max_epochs=2", "optimizer.lr=0.01,0.02"]
    on_slurm = sweep(tmp_path / "slurm", *overrides)
    assert on_slurm.returncode == 0, on_slurm.stderr[-3000:]
    local = run_script("train", ["-m", f"hydra.sweep.dir={tmp_path / 'local'}", *overrides], cwd=tmp_path)
    assert local.returncode == 0, local.stderr[-3000:]

    slurm_sweep, local_sweep = tmp_path / "slurm" / "sweep", tmp_path / "local"
    assert "(2 jobs: 2 ok)" in on_slurm.stdout
    for number, job_id in enumerate(job_ids(slurm_sweep)):
        job, local_job = job_dir(slurm_sweep, number), job_dir(local_sweep, number)
        assert job.name == local_job.name == f"00{number}_optimizer.lr-0.0{number + 1}"  # the launcher names it alike
        assert read_status(job)["status"] == "ok"
        assert read_status(job)["overrides"][-1] == read_status(local_job)["overrides"][-1]
        assert any(job.glob("events.out.tfevents.*"))  # TensorBoard names it by the job folder
        record = final_record(job_id)
        assert (record["JobState"], record["ExitCode"]) == ("COMPLETED", "0:0")
    # Nothing a user cannot act on: no sacct warnings on a cluster without accounting.
    assert "sacct" not in on_slurm.stdout + on_slurm.stderr


def test_a_job_that_reaches_its_time_limit_is_requeued_and_resumes_to_the_same_result(tmp_path: Path) -> None:
    # SLURM warns the job 60 s before its 2-minute limit, on its own clock: 30 to 60 s after the job starts.
    # 150 epochs take longer than that, so every job is requeued at least once.
    run = [*LONG_RUN, "trainer.deterministic=true", "trainer.max_epochs=150"]
    uninterrupted = subprocess.Popen(  # the same run on this machine, in parallel: the result to compare with
        [str(BIN / "trainlab-train"), *run, "extras.num_threads=1", f"hydra.run.dir={tmp_path / 'local'}"],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    result = sweep(
        tmp_path,
        *run,
        "hydra.launcher.timeout_min=2",
        "hydra.launcher.signal_delay_s=60",
        "hydra.launcher.max_num_timeout=20",  # room for a loaded machine, where each attempt trains less
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert uninterrupted.wait(timeout=600) == 0, uninterrupted.stderr.read()[-3000:]

    job = job_dir(tmp_path / "sweep", 0)
    record = final_record(job_ids(tmp_path / "sweep")[0])
    assert int(record["Restarts"]) >= 1
    assert (record["JobState"], record["ExitCode"]) == ("COMPLETED", "0:0")
    assert read_status(job)["status"] == "ok"
    assert not list(job.glob("attempt_*"))  # resumed in its folder, never started over
    assert (
        f"Restored all states from the checkpoint at {job / 'checkpoints' / 'last.ckpt'}"
        in (job / "train.log").read_text()
    )
    steps = val_steps(job)
    assert len(steps) == 150 and steps == sorted(set(steps))  # one point per epoch: none twice, none missing
    assert final_values(job) == pytest.approx(final_values(tmp_path / "local"), rel=1e-6)


def test_a_job_out_of_requeues_resumes_when_its_sweep_runs_again(tmp_path: Path) -> None:
    process = start_sweep(
        tmp_path, *LONG_RUN, *WARNED_BY_THE_TEST, "trainer.max_epochs=40", "hydra.launcher.max_num_timeout=0"
    )
    job = wait_until(lambda: job_dirs(tmp_path / "sweep").get(0), "the job's folder")
    wait_until(lambda: (job / "checkpoints" / "last.ckpt").is_file(), "the job's first last.ckpt")
    send_time_limit_warning(job_ids(tmp_path / "sweep")[0])
    output = finish(process)

    assert "(1 jobs: 1 interrupted)" in output
    status = read_status(job)
    assert (status["status"], status["signal"]) == ("interrupted", "SIGUSR2")
    # The command a user can paste: trainlab's own, the same sweep into the same folder.
    resume = shlex.split(status["resume"])
    assert resume[:2] == [str(BIN / "trainlab-train"), "-m"] and "hydra/launcher=slurm" in resume
    assert resume[-1] == f"hydra.sweep.dir={tmp_path / 'sweep'}"
    assert f"resume with: {status['resume']}" in (job / "train.log").read_text()

    again = subprocess.run(resume, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr[-3000:]
    assert read_status(job)["status"] == "ok"
    assert not list(job.glob("attempt_*"))  # stopped by time: resumed, not started over
    steps = val_steps(job)
    assert len(steps) == 40 and steps == sorted(set(steps))


def test_an_attempt_warned_before_its_first_epoch_ends_records_it(tmp_path: Path) -> None:
    # One epoch of 4096 steps: the warning lands long before it ends, so there is no last.ckpt to resume from.
    process = start_sweep(
        tmp_path,
        *LONG_RUN,
        *WARNED_BY_THE_TEST,
        "data.num_train=65536",
        "trainer.max_epochs=1",
        "hydra.launcher.max_num_timeout=1",
    )
    job = wait_until(lambda: job_dirs(tmp_path / "sweep").get(0), "the job's folder")
    wait_until(lambda: read_status(job)["status"] == "running", "the job to start training")
    send_time_limit_warning(job_ids(tmp_path / "sweep")[0])
    finish(process)

    # The requeued attempt started over and kept the first one's files aside, with how it ended.
    first_attempt = read_status(job / "attempt_1")
    assert (first_attempt["status"], first_attempt["signal"]) == ("interrupted", "SIGUSR2")
    assert read_status(job)["status"] == "ok"
    record = final_record(job_ids(tmp_path / "sweep")[0])
    assert (record["JobState"], record["Restarts"]) == ("COMPLETED", "1")


def test_a_finished_job_warned_while_it_exits_is_completed_and_not_requeued(tmp_path: Path) -> None:
    result = sweep(
        tmp_path,
        *TINY_MLP,
        "trainer.max_epochs=1",
        "+hydra.callbacks.warn_while_exiting._target_=tests.runkit.helpers.slurm.WarnWhileExiting",
        env={"PYTHONPATH": str(ROOT)},  # the job imports the callback from tests/
    )
    assert result.returncode == 0, result.stderr[-3000:]
    record = final_record(job_ids(tmp_path / "sweep")[0])
    assert (record["JobState"], record["ExitCode"], record["Restarts"]) == ("COMPLETED", "0:0", "0")
    assert read_status(job_dir(tmp_path / "sweep", 0))["status"] == "ok"


def test_a_job_that_slurm_ends_without_a_result_is_counted_and_the_sweep_ends(tmp_path: Path) -> None:
    process = start_sweep(tmp_path, *LONG_RUN, "trainer.max_epochs=100")
    job = wait_until(lambda: job_dirs(tmp_path / "sweep").get(0), "the job's folder")
    wait_until(lambda: read_status(job)["status"] == "running", "the job to start training")
    subprocess.run(["scancel", job_ids(tmp_path / "sweep")[0]], check=True)
    output = finish(process)  # on a cluster without accounting the sweep used to wait for it forever

    assert "(1 jobs: 1 interrupted)" in output
    status = read_status(job)
    assert status["status"] == "interrupted"
    assert shlex.split(status["resume"])[-1] == f"hydra.sweep.dir={tmp_path / 'sweep'}"


@pytest.mark.parametrize("launch", ["srun", "sweep job"])
def test_ddp_across_two_slurm_tasks_is_one_run_with_one_set_of_curves(launch: str, tmp_path: Path) -> None:
    ddp = [*TINY_MLP, "trainer=ddp_cpu", "trainer.devices=2", "trainer.max_epochs=2"]
    if launch == "srun":  # how a batch script starts a multi-process run: one task per rank
        command = ["srun", "--nodes=1", "--ntasks-per-node=2", "--cpus-per-task=1", str(BIN / "trainlab-train")]
        result = subprocess.run(
            [*command, *ddp, f"paths.log_dir={tmp_path / 'logs'}"], cwd=tmp_path, capture_output=True, text=True
        )
        assert result.returncode == 0, result.stderr[-3000:]
        [run] = (tmp_path / "logs" / "train" / "runs").iterdir()
    else:
        result = sweep(tmp_path, *ddp, "hydra.launcher.tasks_per_node=2", "seed=1")
        assert result.returncode == 0, result.stderr[-3000:]
        [run] = job_dirs(tmp_path / "sweep").values()

    assert read_status(run)["status"] == "ok"
    assert "Starting with 2 processes" in (run / "train.log").read_text()
    # Only rank 0 writes curves: every event file comes from one process.
    writers = {path.name.split(".")[-2] for path in run.rglob("events.out.tfevents.*")}
    assert len(writers) == 1
    assert len(val_steps(run)) == 2


def test_a_local_run_on_a_machine_with_slurm_does_not_suggest_srun(tmp_path: Path) -> None:
    result = run_script("train", [*TINY_MLP, "trainer.max_epochs=1", f"paths.log_dir={tmp_path}"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "srun" not in result.stdout + result.stderr


# --- a search's workers on SLURM (hydra.sweeper.workers) --------------------------------------------------------
def search_on_slurm(tmp_path: Path, *overrides: str) -> subprocess.CompletedProcess:
    args = ["hparams_search=optuna", *LONG_RUN, "trainer.max_epochs=4", "hydra.sweeper.n_trials=8", *overrides]
    return sweep(tmp_path, *args)


def summarize_progress(sweep_dir: Path) -> str:
    result = run_script("summarize", [str(sweep_dir), "--no-plot"], cwd=sweep_dir)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


def search_ended(sweep_dir: Path, arrays: list[str]) -> bool:
    """Every trial counted is done and no worker of the search is left in SLURM's queue."""
    study = study_of(sweep_dir)
    trials = counted(study)
    queued = subprocess.run(["squeue", "--noheader", "--array", "--jobs", ",".join(arrays)], capture_output=True)
    done = len(trials) == 8 and all(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in trials)
    return done and not queued.stdout.strip()


def test_a_search_submitted_as_workers_returns_survives_a_cancelled_worker_and_a_second_command(tmp_path: Path) -> None:
    sweep_dir = tmp_path / "sweep"
    submitted = search_on_slurm(tmp_path, "hydra.sweeper.workers=3")
    assert submitted.returncode == 0, submitted.stderr[-3000:]
    assert "Submitted 3 workers to SLURM as job array" in submitted.stdout
    (array,) = submitted_arrays(sweep_dir)
    assert "Follow it: " in submitted.stdout and str(sweep_dir) in submitted.stdout
    # Progress, read while the workers run.
    progress = summarize_progress(sweep_dir)
    assert "Study train_optuna: " in progress and " of 8 trials done" in progress
    assert f"Workers, SLURM job {array}: " in progress
    # A worker cancelled in the middle of a trial.
    victim = wait_until(lambda: running_trial_with_a_checkpoint(sweep_dir), "a worker in the middle of a trial")
    task = victim.user_attrs[WORKER].split("-slurm")[1]
    subprocess.run(["scancel", task], check=True)
    # The command run again while workers are alive: more workers join, no trial runs twice.
    again = search_on_slurm(tmp_path, "hydra.sweeper.workers=3")
    assert again.returncode == 0, again.stderr[-3000:]
    arrays = submitted_arrays(sweep_dir)
    assert len(arrays) == 2
    wait_until(lambda: search_ended(sweep_dir, arrays), "the search's 8 trials and its workers to end", timeout=600)
    study = study_of(sweep_dir)
    (taker,) = [t for t in study.trials if t.user_attrs.get(TAKES_OVER) == victim.number]
    assert taker.user_attrs[JOB] == victim.number and taker.params == victim.params
    jobs = sorted(t.user_attrs[JOB] for t in counted(study))
    assert jobs == sorted(set(jobs)) and len(jobs) == 8  # one job folder a trial
    for trial in counted(study):
        status = read_status(job_dir(sweep_dir, trial.user_attrs[JOB]))
        assert status["status"] in ("ok", "pruned"), status
    assert "taken_over" in read_status(job_dir(sweep_dir, victim.number))
    assert "8 of 8 trials done" in summarize_progress(sweep_dir)


def test_a_grid_submitted_as_workers_ends_with_every_job_ok(tmp_path: Path) -> None:
    sweep_dir = tmp_path / "sweep"
    grid = ["hparams_search=grid", "seed=1,2,3,4", "hydra.sweeper.workers=2", *TINY_MLP, "trainer.max_epochs=1"]
    submitted = sweep(tmp_path, *grid)
    assert submitted.returncode == 0, submitted.stderr[-3000:]
    assert "Submitted 2 workers to SLURM as job array" in submitted.stdout
    arrays = submitted_arrays(sweep_dir)

    def ended() -> bool:
        queued = subprocess.run(["squeue", "--noheader", "--array", "--jobs", ",".join(arrays)], capture_output=True)
        return not queued.stdout.strip() and len(job_dirs(sweep_dir)) == 4

    wait_until(ended, "the grid's workers to end", timeout=600)
    assert [read_status(job_dir(sweep_dir, number))["status"] for number in range(4)] == ["ok"] * 4
    assert [job_dir(sweep_dir, number).name for number in range(4)] == [f"00{n}_seed-{n + 1}" for n in range(4)]
