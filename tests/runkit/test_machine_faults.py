"""When the machine runs out of memory or disk, or a run stops before it trained: one line that says what and what
to change, a true status or no folder at all, and nothing the user had is lost."""

from pathlib import Path

import pytest
import torch

from runkit.config.errors import ResourceError
from runkit.runs.status import read_status
from runkit.training import run, train
from tests.runkit.helpers.config import compose_config
from tests.runkit.helpers.faults import can_mount, fill_disk, small_disk
from tests.runkit.helpers.process import ROOT, run_script
from tests.runkit.helpers.runs import TINY_MLP


def test_data_larger_than_memory_is_one_line_with_the_setting_to_change(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    # 10^17 samples: more bytes than any address space, so the allocator refuses at once, without touching the
    # machine's memory, whatever its size and overcommit setting (vm.overcommit_memory=1, Kubernetes' default,
    # grants a mere trillion samples' 8 TB and the run is then OOM-killed)
    cfg = compose_config("train", [*TINY_MLP, "logger=none", "data.num_train=100000000000000000"], run_dir)
    with pytest.raises(ResourceError) as error:
        run(cfg)
    message = str(error.value)
    assert message.startswith("Out of memory while building the data: it needed ")
    assert "the machine has " in message and message.endswith("use fewer samples (data.num_train=100000000000000000).")
    assert read_status(run_dir) == {"status": "failed", "error": message}


def test_a_gpu_out_of_memory_names_batch_size_precision_and_width(tmp_path: Path) -> None:
    fault = "+callbacks.fault._target_=tests.runkit.helpers.faults.GpuRunsOutOfMemory"
    cfg = compose_config("train", [*TINY_MLP, "logger=none", fault], tmp_path / "run")
    with pytest.raises(ResourceError) as error:
        train(cfg)
    assert str(error.value) == (
        "Out of memory while training: it asked for 2.00 GiB more, the GPU has 79.11 GiB; lower data.batch_size "
        "(now 32), compute in bf16 with trainer=bf16 (precision now 32-true), or narrow the model (model.net's widths)."
    )


@pytest.mark.slow  # two whole runs
def test_a_full_disk_keeps_the_earlier_checkpoints_whole_and_says_so_in_one_line(tmp_path: Path) -> None:
    if not can_mount():  # asked here, not at collection: the check mounts a tmpfs for a moment
        pytest.skip("needs root allowed to mount a small tmpfs that really fills (a container's root usually is not)")
    with small_disk(tmp_path / "disk") as disk:
        run_dir = disk / "run"
        first = run_script("train", [*TINY_MLP, "trainer.max_epochs=1", f"hydra.run.dir={run_dir}"], cwd=tmp_path)
        assert first.returncode == 0, first.stderr
        last = run_dir / "checkpoints" / "last.ckpt"
        before = torch.load(last, weights_only=True)
        fill_disk(disk, leave=100 * 1024)  # room for logs and status, not for a checkpoint
        args = [*TINY_MLP, "trainer.max_epochs=3", "ckpt_path=last", f"hydra.run.dir={run_dir}"]
        result = run_script("train", args, cwd=tmp_path)
        assert result.returncode == 2
        assert "Traceback" not in result.stderr  # Lightning's own warnings may come first; the error is one line
        assert (
            result.stderr.strip()
            .splitlines()[-1]
            .startswith(f"Error: The disk of {run_dir / 'checkpoints'} is full: checkpoint ")
        )
        after = torch.load(last, weights_only=True)  # still whole, and still epoch 1's
        assert after["global_step"] == before["global_step"]
        assert all(torch.equal(after["state_dict"][name], value) for name, value in before["state_dict"].items())
        assert not list(run_dir.rglob("*.partial"))
        assert read_status(run_dir)["status"] == "failed"


@pytest.mark.slow  # a whole trainlab process (~5 s)
def test_resuming_a_folder_that_does_not_exist_leaves_no_folder_behind(tmp_path: Path) -> None:
    run_dir = tmp_path / "no" / "such" / "run"
    result = run_script("train", [*TINY_MLP, "ckpt_path=last", f"hydra.run.dir={run_dir}"], cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"Error: ckpt_path=last found no last.ckpt in {run_dir / 'checkpoints'}; set hydra.run.dir to the folder of "
        "the run to resume (e.g. hydra.run.dir=logs/train/runs/<run>) or give a checkpoint file as "
        "ckpt_path=<path>."
    ]
    assert not run_dir.exists()


@pytest.mark.slow  # a guard against data loss, run by make test-full
def test_a_folder_the_user_had_is_kept_when_the_resume_fails(tmp_path: Path) -> None:
    run_dir = tmp_path / "mine"
    run_dir.mkdir()
    result = run_script("train", [*TINY_MLP, "ckpt_path=last", f"hydra.run.dir={run_dir}"], cwd=tmp_path)
    assert result.returncode == 2
    assert run_dir.is_dir()


@pytest.mark.slow  # a whole process (~5 s): the fast suite keeps to two minutes
def test_a_run_stopped_before_training_leaves_nothing_behind(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    stop = "+callbacks.stop._target_=tests.runkit.helpers.faults.InterruptBeforeTraining"
    result = run_script(
        "train", [*TINY_MLP, stop, f"paths.log_dir={logs}"], cwd=tmp_path, env={"PYTHONPATH": str(ROOT)}
    )
    assert result.returncode == 130, result.stderr[-2000:]
    assert "Stopped by SIGINT before training began; no run folder was kept." in result.stdout + result.stderr
    assert list((logs / "train" / "runs").iterdir()) == []
