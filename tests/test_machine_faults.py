"""When the machine runs out of memory or disk: one line that says what and what to change, exit code 2, a true
status, and nothing the user had is lost."""

from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from tests.helpers.config import compose_config
from tests.helpers.faults import can_mount, fill_disk, small_disk
from tests.helpers.process import run_script
from tests.helpers.runs import TINY_MLP
from trainlab.config.errors import ResourceError
from trainlab.training import train


def status_of(run_dir: Path) -> dict:
    return OmegaConf.to_container(OmegaConf.load(run_dir / "status.yaml"))


def test_data_larger_than_memory_is_one_line_with_the_setting_to_change(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    # a trillion samples: the allocator refuses at once, without touching the machine's memory
    args = [*TINY_MLP, "data.num_train=1000000000000", f"hydra.run.dir={run_dir}"]
    result = run_script("train", args, cwd=tmp_path)
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("Error: Out of memory while building the data: it needed ")
    assert "the machine has " in line and line.endswith("use fewer samples (data.num_train=1000000000000).")
    assert status_of(run_dir)["status"] == "failed"


def test_a_gpu_out_of_memory_names_batch_size_precision_and_width(tmp_path: Path) -> None:
    fault = "+callbacks.fault._target_=tests.helpers.faults.GpuRunsOutOfMemory"
    cfg = compose_config("train", [*TINY_MLP, "logger=none", fault], tmp_path / "run")
    with pytest.raises(ResourceError) as error:
        train(cfg)
    assert str(error.value) == (
        "Out of memory while training: it asked for 2.00 GiB more, the GPU has 79.11 GiB; lower data.batch_size "
        "(now 32), compute in bf16 with trainer=bf16 (precision now 32-true), or narrow the model (model.net's widths)."
    )


@pytest.mark.skipif(not can_mount(), reason="needs root to mount a small tmpfs that really fills")
def test_a_full_disk_keeps_the_earlier_checkpoints_whole_and_says_so_in_one_line(tmp_path: Path) -> None:
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
        assert status_of(run_dir)["status"] == "failed"
