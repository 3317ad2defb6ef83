"""A fault drill: `make stress` (or `.venv/bin/python scripts/stress.py [--kills N] [--seed S]`).

Six drills, the first five against an uninterrupted reference, with real processes and real SIGKILLs:
  1. a training run killed at random moments N times, resumed with `ckpt_path=last` after each kill;
  2. a 4-job joblib multirun killed at a random moment: its job processes must stop within 30 s (no orphan
     trains on), then the same command runs again into the same sweep folder (finished jobs are skipped, the
     others resumed or rerun);
  3. two 4-job joblib multiruns started together into one sweep folder: every job trains in one process only,
     once, and ends ok with the reference's metrics;
  4. a process saving a large checkpoint over last.ckpt again and again, killed at random moments:
     last.ckpt must load every time;
  5. a run on a small disk (a tmpfs, as root) that fills during training: one line and exit code 2, status
     failed, last.ckpt whole and no partial file; then, with room again, `ckpt_path=last` finishes it;
  6. several sweeps of many one-epoch jobs side by side (3 of 24 by default): every job ends ok, and no sweep's
     process gains open files from job to job; its threads and memory per job are reported.
For each drill it prints whether the final metrics equal the uninterrupted run's, how many
checkpoints and TensorBoard points survived, and anything lost. Exits 1 if any drill lost something.
"""

import argparse
import random
import shlex
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from runkit.runs.reading import read_scalars
from runkit.runs.status import read_status

BIN = Path(sys.executable).parent
RUN = [
    "data=synthetic_classification",
    "model=mlp",
    "data.num_train=4096",
    "data.num_val=256",
    "data.num_test=256",
    "data.batch_size=16",
    "trainer.max_epochs=4",
    "trainer.deterministic=true",
    "extras.print_config=false",
    "callbacks.progress_bar=null",
    "callbacks.model_summary=null",
    "callbacks.early_stopping=null",
]
FINAL = ("val/loss", "val/acc", "test/loss", "test/acc")
# How long the job processes of a killed sweep may go on: they check for their parent every 2 s, then record
# their status (process/orphan.py).
ORPHAN_GRACE_S = 30
SAME = "final metrics equal the uninterrupted run's"


def train(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "trainlab-train"), *args], cwd=cwd, capture_output=True, text=True)


def kill_at_random(args: list[str], cwd: Path, rng: random.Random, wait_for: Path) -> set[int] | None:
    """Start a run, SIGKILL it at a random moment after `wait_for` exists; None if it finished first, else the
    processes it had started (a sweep's job processes), which the kill orphaned."""
    process = subprocess.Popen(
        [str(BIN / "trainlab-train"), *args], cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    while not wait_for.exists() and process.poll() is None:
        time.sleep(0.1)
    time.sleep(rng.uniform(0.0, 3.0))
    if process.poll() is not None:
        return None
    orphans = children(process.pid)
    process.send_signal(signal.SIGKILL)
    process.wait()
    return orphans


def children(pid: int) -> set[int]:
    """The processes `pid` started that still run (Linux's /proc; none found elsewhere)."""
    tasks = Path(f"/proc/{pid}/task")
    found: set[int] = set()
    for task in tasks.iterdir() if tasks.is_dir() else []:
        found |= {int(child) for child in (task / "children").read_text().split()}
    return found


def running(pid: int) -> bool:
    """Whether `pid` still runs; one that ended and waits to be reaped (a zombie) does not."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def outlived(processes: set[int], seconds: float) -> set[int]:
    """Those of `processes` still running after `seconds`: what an orphaned sweep left behind."""
    deadline = time.monotonic() + seconds
    while any(running(pid) for pid in processes) and time.monotonic() < deadline:
        time.sleep(0.5)
    return {pid for pid in processes if running(pid)}


def final_values(run: Path) -> dict[str, float]:
    scalars = read_scalars(run)
    return {tag: scalars[tag][-1][1] for tag in FINAL if tag in scalars}


def points(run: Path) -> int:
    return sum(len(curve) for curve in read_scalars(run).values())


def doubled_steps(run: Path, reference: Path) -> int:
    """Points TensorBoard shows for a step that already has one in the same curve, beyond those of the
    uninterrupted run (Lightning logs `epoch` twice at each epoch's last step): what a resume must not add."""

    def doubled(folder: Path) -> int:
        return sum(len(c) - len({step for step, _ in c}) for c in read_scalars(folder).values())

    return doubled(run) - doubled(reference)


def report(name: str, claim: str, holds: bool, details: str, lost: list[str]) -> bool:
    print(f"{name}: {claim}: {'yes' if holds else 'NO'}; {details}")
    print(f"  lost: {', '.join(lost) if lost else 'nothing'}")
    return holds and not lost


def drill_single_run(work: Path, kills: int, rng: random.Random) -> bool:
    reference = work / "reference"
    assert train([*RUN, f"hydra.run.dir={reference}"], work).returncode == 0
    run = work / "killed"
    args = [*RUN, f"hydra.run.dir={run}"]
    done = 0
    for _ in range(kills):
        resume = ["ckpt_path=last"] if (run / "checkpoints" / "last.ckpt").exists() else []
        done += kill_at_random([*args, *resume], work, rng, run / "checkpoints" / "last.ckpt") is not None
    resume = ["ckpt_path=last"] if (run / "checkpoints" / "last.ckpt").exists() else []
    final = train([*args, *resume], work)
    lost = [] if final.returncode == 0 else [f"the last resume failed: {final.stderr[-300:]}"]
    lost += [f"{n} doubled points"] if (n := doubled_steps(run, reference)) else []
    checkpoints = len(list((run / "checkpoints").glob("*.ckpt")))
    details = f"{done} kills, {checkpoints} checkpoints, {points(run)} of {points(reference)} TensorBoard points"
    return report("single run", SAME, final_values(run) == final_values(reference), details, lost)


def drill_multirun(work: Path, rng: random.Random) -> bool:
    sweep = ["-m", *RUN, "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", "seed=1,2,3,4"]
    jobs = [f"{number:03d}_seed-{number + 1}" for number in range(4)]  # the sweep's job folders, named by their seed
    reference, killed = work / "sweep_reference", work / "sweep_killed"
    assert train([*sweep, f"hydra.sweep.dir={reference}"], work).returncode == 0
    args = [*sweep, f"hydra.sweep.dir={killed}"]
    orphans = kill_at_random(args, work, rng, killed / jobs[0] / "checkpoints" / "last.ckpt")
    left_running = outlived(orphans or set(), ORPHAN_GRACE_S)  # the orphaned-sweep drill: none may train on
    statuses = [read_status(killed / job).get("status") for job in jobs]
    rerun = train(args, work)
    lost = [] if rerun.returncode == 0 else [f"the rerun failed: {rerun.stderr[-300:]}"]
    lost += (
        [f"{len(left_running)} job processes still ran {ORPHAN_GRACE_S} s after the sweep died"] if left_running else []
    )
    finals = [(final_values(killed / job), final_values(reference / job)) for job in jobs]
    same = all(mine and mine == theirs for mine, theirs in finals)  # and none empty: every job's curves were read
    lost += [f"job {job} not ok" for job in jobs if read_status(killed / job)["status"] != "ok"]
    lost += [f"job {job}: {n} doubled points" for job in jobs if (n := doubled_steps(killed / job, reference / job))]
    details = f"killed: {orphans is not None}, job statuses after the kill: {statuses}"
    return report("4-job joblib multirun", SAME, same, details, lost)


def drill_two_sweeps_one_folder(work: Path) -> bool:
    """Two 4-job joblib sweeps started together into one sweep folder: each job trains in one process only."""
    sweep = ["-m", *RUN, "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", "seed=1,2,3,4"]
    jobs = [f"{number:03d}_seed-{number + 1}" for number in range(4)]
    reference, shared = work / "sweep_reference", work / "sweep_shared"
    assert train([*sweep, f"hydra.sweep.dir={reference}"], work).returncode == 0
    command = [str(BIN / "trainlab-train"), *sweep, f"hydra.sweep.dir={shared}"]
    both = [
        subprocess.Popen(command, cwd=work, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    lost = []
    for process in both:
        error = process.communicate()[1]
        lost += [f"a sweep failed: {error[-300:]}"] if process.returncode != 0 else []
    lost += [f"job {job} not ok" for job in jobs if read_status(shared / job).get("status") != "ok"]
    lost += [f"job {job} set an attempt aside" for job in jobs if list((shared / job).glob("attempt_*"))]
    lost += [f"job {job}: {n} doubled points" for job in jobs if (n := doubled_steps(shared / job, reference / job))]
    same = all(final_values(shared / job) == final_values(reference / job) for job in jobs)
    return report("two sweeps, one folder", SAME, same, "each job trained by one of the two", lost)


SMALL_JOB = [
    "data=synthetic_classification",
    "model=mlp",
    "data.num_train=256",
    "data.num_val=64",
    "data.num_test=64",
    "trainer.max_epochs=1",
    "extras.print_config=false",
    "callbacks.progress_bar=null",
]


def process_reading(pid: int) -> tuple[int, int, float] | None:
    """Open file descriptors, threads and resident memory (MB) of a running process (Linux's /proc)."""
    try:
        fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines())
        return (
            len(list(Path(f"/proc/{pid}/fd").iterdir())),
            int(fields["Threads"]),
            int(fields["VmRSS"].split()[0]) / 1024,
        )
    except (OSError, KeyError, ValueError):  # it ended meanwhile
        return None


def drill_many_small_jobs(work: Path, sweeps: int, jobs: int) -> bool:
    """Several sweeps of many one-epoch jobs side by side, each in one process (the basic launcher): every job
    ends ok, and each sweep's process holds no more open files at its last jobs than at its first. Its threads
    and memory are read at each finished job too, and reported."""
    command = [str(BIN / "trainlab-train"), "-m", *SMALL_JOB, f"seed=range(0,{jobs})"]
    folders = [work / f"sweep_{number}" for number in range(sweeps)]
    # Each sweep's stderr goes to a file, not a pipe: a pipe nobody reads until the end fills and stalls it.
    processes = [
        subprocess.Popen(
            [*command, f"hydra.sweep.dir={folder}"],
            cwd=work,
            stdout=subprocess.DEVNULL,
            stderr=folder.with_suffix(".err").open("w"),
        )
        for folder in folders
    ]
    readings: list[dict[int, tuple[int, int, float]]] = [{} for _ in processes]  # per sweep: by jobs finished
    while any(process.poll() is None for process in processes):
        for process, folder, by_jobs in zip(processes, folders, readings, strict=True):
            finished = sum(read_status(path.parent).get("status") == "ok" for path in folder.glob("*/status.yaml"))
            reading = process_reading(process.pid) if process.poll() is None else None
            if reading is not None and finished:
                before = by_jobs.get(finished, reading)
                # The fewest files and the least memory seen: a job that runs holds more than what stays after it.
                by_jobs[finished] = (min(before[0], reading[0]), reading[1], min(before[2], reading[2]))
        time.sleep(0.2)
    lost = []
    details = []
    for process, folder, by_jobs in zip(processes, folders, readings, strict=True):
        error = folder.with_suffix(".err").read_text()
        lost += [f"{folder.name} failed: {error[-300:]}"] if process.wait() != 0 else []
        statuses = [read_status(path.parent).get("status") for path in folder.glob("*/status.yaml")]
        lost += [f"{folder.name}: {statuses.count('ok')} of {jobs} jobs ok"] if statuses.count("ok") != jobs else []
        if len(by_jobs) < 2:
            lost.append(f"{folder.name}: too few readings of its process")
            continue
        first, last = min(by_jobs), max(by_jobs)
        (_, threads_first, rss_first), (_, threads_last, rss_last) = by_jobs[first], by_jobs[last]
        # Open files while the first and the last third of the jobs ran: the fewest seen, since a job holds its log
        # and lock files only while it runs.
        third = max(1, (last - first) // 3)
        fds_first = min(fds for count, (fds, _, _) in by_jobs.items() if count < first + third)
        fds_last = min(fds for count, (fds, _, _) in by_jobs.items() if count > last - third)
        lost += [f"{folder.name}: open files {fds_first} -> {fds_last}"] if fds_last > fds_first else []
        slope = (rss_last - rss_first) / (last - first)
        details.append(
            f"{folder.name}: after job {first} -> {last}: files {fds_first} -> {fds_last}, threads {threads_first} -> "
            f"{threads_last}, memory {rss_first:.0f} -> {rss_last:.0f} MB ({slope:+.2f} MB a job)"
        )
    claim = f"{sweeps} sweeps of {jobs} jobs side by side: every job ok, no open files gained from job to job"
    return report("many small jobs", claim, not lost, "; ".join(details), lost)


WRITER = """
import sys, torch
from runkit.checkpoints import AtomicCheckpointIO
writer, path = AtomicCheckpointIO(), sys.argv[1]
for version in range(1_000_000):
    writer.save_checkpoint({"version": version, "state_dict": {"w": torch.full((8_000_000,), float(version))}}, path)
    print(version, flush=True)
"""


def drill_checkpoint_writes(work: Path, kills: int, rng: random.Random) -> bool:
    path = work / "last.ckpt"
    whole = 0
    lost = []
    for _ in range(kills):
        process = subprocess.Popen([sys.executable, "-c", WRITER, str(path)], stdout=subprocess.PIPE, text=True)
        process.stdout.readline()  # one checkpoint written in full
        time.sleep(rng.uniform(0.0, 1.0))
        process.send_signal(signal.SIGKILL)
        process.wait()
        try:
            checkpoint = torch.load(path, weights_only=True)
            whole += bool((checkpoint["state_dict"]["w"] == checkpoint["version"]).all())
        except Exception as error:
            lost.append(f"last.ckpt unreadable after a kill ({type(error).__name__})")
    stray = [p.name for p in work.iterdir() if p.name != "last.ckpt"]
    details = f"{kills} kills during writes of a 32 MB checkpoint, last.ckpt whole after {whole}; files left: {stray}"
    return report("checkpoint writes", "last.ckpt loads after every kill", whole == kills, details, lost)


def mount_small_disk(folder: Path, size: str) -> bool:
    """Mount (or resize) a tmpfs on `folder`; False where this process may not (not root)."""
    folder.mkdir(exist_ok=True)
    options = f"remount,size={size}" if folder.is_mount() else f"size={size}"
    return subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)]).returncode == 0


def drill_full_disk(work: Path) -> bool:
    reference = work / "reference"
    assert train([*RUN, f"hydra.run.dir={reference}"], work).returncode == 0
    disk = work / "disk"
    if not mount_small_disk(disk, "1200k"):  # room for the first epoch's two checkpoints, not a third
        print("full disk: not drilled (mounting a tmpfs needs root)")
        return True
    try:
        run = disk / "run"
        full = train([*RUN, f"hydra.run.dir={run}"], work)
        error = full.stderr.strip().splitlines()[-1:] or [""]
        lost = [] if full.returncode == 2 and "is full" in error[0] else [f"no one-line error: {full.stderr[-300:]}"]
        lost += ["Traceback on the console"] if "Traceback" in full.stderr else []
        lost += [] if read_status(run)["status"] == "failed" else ["status is not failed"]
        lost += [f"{p.name} left behind" for p in run.rglob("*.partial")]
        try:
            torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)
        except Exception as problem:
            lost.append(f"last.ckpt unreadable ({type(problem).__name__})")
        mount_small_disk(disk, "64m")
        resumed = train([*RUN, "ckpt_path=last", f"hydra.run.dir={run}"], work)
        lost += [] if resumed.returncode == 0 else [f"the resume failed: {resumed.stderr[-300:]}"]
        details = f"{error[0][:90]}..."
        return report(
            "full disk", SAME + " after the resume", final_values(run) == final_values(reference), details, lost
        )
    finally:
        subprocess.run(["umount", "-l", str(disk)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=3, help="kills in the single-run and checkpoint drills")
    parser.add_argument("--seed", type=int, default=0, help="seeds the moments of the kills")
    parser.add_argument("--sweeps", type=int, default=3, help="sweeps side by side in the many-small-jobs drill")
    parser.add_argument("--jobs", type=int, default=24, help="jobs in each of those sweeps")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    print(f"fault drill, seed {args.seed}: {shlex.join(sys.argv)}")
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        for name in ("single", "sweeps", "shared", "writes", "disk", "many"):
            (work / name).mkdir()
        results = [
            drill_single_run(work / "single", args.kills, rng),
            drill_multirun(work / "sweeps", rng),
            drill_two_sweeps_one_folder(work / "shared"),
            drill_checkpoint_writes(work / "writes", args.kills, rng),
            drill_full_disk(work / "disk"),
            drill_many_small_jobs(work / "many", args.sweeps, args.jobs),
        ]
    sys.exit(0 if all(results) else 1)


if __name__ == "__main__":
    main()
