"""One GPU per side-by-side sweep job (process/devices.py), on the CPU: real processes claim GPU indices through
file locks, and set_up_process changes trainer.devices only where a joblib sweep's job asks for one GPU."""

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from hydra.core.hydra_config import HydraConfig
from omegaconf import OmegaConf

from runkit.process import devices, setup
from runkit.process.devices import LOCK_FOLDER, asks_for_one_gpu, claim_device, lock_path, release, try_lock
from runkit.process.setup import set_up_process
from tests.runkit.helpers.config import compose_config
from tests.runkit.helpers.runs import TINY_MLP

# A process that claims one of `count` GPUs, prints the index and slot, and holds the claim until stdin closes.
CLAIMANT = """
import sys
from pathlib import Path
from runkit.process.devices import claim_device
claim = claim_device(int(sys.argv[1]), Path(sys.argv[2]))
print(claim.index, claim.slot, flush=True)
sys.stdin.read()
"""


def claim_in_processes(claimants: int, count: int, folder: Path) -> list[tuple[int, int]]:
    """(index, slot) of each of `claimants` processes started together, all holding their claims at once."""
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", CLAIMANT, str(count), str(folder)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(claimants)
    ]
    try:
        return sorted(tuple(map(int, process.stdout.readline().split())) for process in processes)
    finally:
        for process in processes:
            process.communicate(timeout=60)  # closes stdin: the claimant exits and its lock goes


def test_processes_started_together_claim_distinct_gpus(tmp_path: Path) -> None:
    assert claim_in_processes(4, 4, tmp_path) == [(0, 0), (1, 0), (2, 0), (3, 0)]


def test_more_claimants_than_gpus_share_them_evenly(tmp_path: Path) -> None:
    """Nobody waits: the third and fourth job each take a second place on a GPU."""
    assert claim_in_processes(4, 2, tmp_path) == [(0, 0), (0, 1), (1, 0), (1, 1)]


def test_a_released_gpu_is_claimed_again(tmp_path: Path) -> None:
    first, second = claim_device(2, tmp_path), claim_device(2, tmp_path)
    assert (first.index, second.index) == (0, 1)
    release(first)
    again = claim_device(2, tmp_path)
    assert (again.index, again.slot) == (0, 0)
    release(second)
    release(again)


def test_a_claim_ends_with_its_process(tmp_path: Path) -> None:
    assert claim_in_processes(1, 2, tmp_path) == [(0, 0)]
    handle = try_lock(lock_path(tmp_path, 0, 0))
    assert handle is not None  # the claimant exited without releasing: the kernel dropped its lock
    handle.close()


def test_the_search_starts_at_the_preferred_gpu(tmp_path: Path) -> None:
    claims = [claim_device(3, tmp_path, first=2) for _ in range(3)]
    assert [claim.index for claim in claims] == [2, 0, 1]
    for claim in claims:
        release(claim)


@pytest.mark.parametrize(
    ("accelerator", "requested", "asks"),
    [
        ("gpu", 1, True),
        ("cuda", "1", True),
        ("auto", "auto", True),  # Lightning would give every side-by-side job all the GPUs
        ("gpu", 2, False),  # DDP within the job: the user chose its devices
        ("gpu", [1], False),
        ("gpu", -1, False),
        ("cpu", 1, False),
        ("mps", 1, False),
    ],
)
def test_which_trainers_ask_for_one_gpu(accelerator: str, requested: object, asks: bool) -> None:
    assert asks_for_one_gpu({"accelerator": accelerator, "devices": requested, "num_nodes": 1}) is asks
    assert not asks_for_one_gpu({"accelerator": accelerator, "devices": requested, "num_nodes": 2})


# --- set_up_process in a sweep's job -------------------------------------------------------------
JOBLIB = ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2", "hydra.mode=MULTIRUN"]
ONE_GPU = ["trainer.accelerator=gpu", "trainer.devices=1"]


@pytest.fixture
def job_process(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """What set_up_process changes in the process, put back after: the command line (a sweep job's DDP ranks rerun
    it), torch threads, Hydra's runtime config and the claim of the test's last job."""
    monkeypatch.setattr(sys, "argv", list(sys.argv))
    # joblib's n_jobs=2 runs 2 jobs at once anywhere: both readers of the core count see 8, whatever this machine has
    monkeypatch.setattr(setup, "available_cores", lambda: 8)
    monkeypatch.setattr(devices, "available_cores", lambda: 8)
    threads, hydra_cfg = torch.get_num_threads(), HydraConfig.instance().cfg
    yield
    devices.release_previous_claim()
    torch.set_num_threads(threads)
    HydraConfig.instance().cfg = hydra_cfg


def gpus(monkeypatch: pytest.MonkeyPatch, count: int) -> None:
    """Pretend the machine has `count` GPUs (nothing here touches CUDA beyond counting them)."""
    monkeypatch.setattr(torch.cuda, "device_count", lambda: count)


def sweep_job(tmp_path: Path, overrides: list[str], num: int = 0):
    """A job's config as a sweep of the given launcher composes it, with Hydra's runtime config set."""
    sweep = tmp_path / "sweep"
    extra = [f"hydra.sweep.dir={sweep}", f"hydra.job.num={num}"]
    return compose_config("train", [*TINY_MLP, *overrides, *extra], sweep / str(num))


@pytest.mark.parametrize(
    "overrides",
    [
        pytest.param([], id="a single CPU run"),
        pytest.param(ONE_GPU, id="a single GPU run"),
        pytest.param(JOBLIB, id="joblib sweep on the CPU"),
        pytest.param([*JOBLIB, "trainer.accelerator=gpu", "trainer.devices=2"], id="joblib sweep, DDP jobs"),
        pytest.param([*JOBLIB, *ONE_GPU, "hydra.launcher.n_jobs=1"], id="joblib one job at a time"),
        pytest.param(["hydra.mode=MULTIRUN", *ONE_GPU], id="basic launcher"),
    ],
)
def test_set_up_process_leaves_other_runs_unchanged(
    overrides: list[str], tmp_path: Path, job_process: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    gpus(monkeypatch, 2)
    cfg = sweep_job(tmp_path, overrides)
    before = OmegaConf.to_container(cfg)
    set_up_process(cfg)
    assert OmegaConf.to_container(cfg) == before
    assert not (tmp_path / "sweep" / LOCK_FOLDER).exists()


def test_set_up_process_leaves_the_trainer_alone_with_one_gpu(
    tmp_path: Path, job_process: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    gpus(monkeypatch, 1)
    cfg = sweep_job(tmp_path, [*JOBLIB, *ONE_GPU])
    set_up_process(cfg)
    assert cfg.trainer.devices == 1


def test_each_job_of_a_worker_claims_afresh(tmp_path: Path, job_process: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """A loky worker runs job after job: each job frees the previous job's GPU before it claims one."""
    gpus(monkeypatch, 2)
    first = sweep_job(tmp_path, [*JOBLIB, *ONE_GPU], num=1)
    set_up_process(first)
    assert first.trainer.devices == [1]  # job 1 looks from GPU 1 onwards, so that jobs spread even one by one
    assert try_lock(lock_path(tmp_path / "sweep" / LOCK_FOLDER, 1, 0)) is None  # held by this job
    second = sweep_job(tmp_path, [*JOBLIB, "trainer.accelerator=auto", "trainer.devices=auto"], num=3)
    set_up_process(second)
    assert second.trainer.devices == [1]  # GPU 1 again: it was free once the first job's claim went


def test_jobs_beyond_the_gpus_share_one_and_say_so(
    tmp_path: Path, job_process: None, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    gpus(monkeypatch, 2)
    folder = tmp_path / "sweep" / LOCK_FOLDER
    folder.mkdir(parents=True)
    held = [claim_device(2, folder), claim_device(2, folder)]  # two other jobs of the sweep
    cfg = sweep_job(tmp_path, [*JOBLIB, *ONE_GPU, "hydra.launcher.n_jobs=3"])
    set_up_process(cfg)
    assert cfg.trainer.devices == [0]
    assert (
        "GPU 0 is shared by 2 jobs: hydra.launcher.n_jobs=3 runs more jobs at once than the 2 GPUs; "
        "set hydra.launcher.n_jobs=2 for one GPU per job."
    ) in caplog.messages
    for claim in held:
        release(claim)
