"""trainer=bf16: bfloat16 mixed precision where the hardware computes it; on a CPU without it a warning and the run
goes on, on a GPU without it a one-line refusal. Each test feeds the CPU's flags in, so none depends on this CPU."""

import logging
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import torch

from runkit.building import build_trainer
from runkit.config import ConfigError
from runkit.process.precision import CPUINFO, check_bf16_hardware, cpu_has_bf16
from tests.runkit.helpers.config import compose_config
from tests.runkit.helpers.process import BIN

X86_WITH_BF16 = "processor\t: 0\nflags\t\t: fpu sse2 avx2 avx512f avx512_bf16 amx_tile amx_bf16\n"
X86_WITHOUT = "processor\t: 0\nflags\t\t: fpu sse2 avx2 avx512f\n"
ARM_WITH_BF16 = "processor\t: 0\nFeatures\t: fp asimd sve bf16 i8mm\n"
EMULATED = "on a CPU without native bfloat16"


@pytest.mark.parametrize(("cpuinfo", "has"), [(X86_WITH_BF16, True), (X86_WITHOUT, False), (ARM_WITH_BF16, True)])
def test_bf16_is_read_from_the_cpus_feature_flags(cpuinfo: str, has: bool) -> None:
    assert cpu_has_bf16(cpuinfo) is has


def test_bf16_on_a_cpu_without_it_warns_once_and_goes_on(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="trainlab"):
        check_bf16_hardware("bf16-mixed", torch.device("cpu"), cpuinfo=X86_WITHOUT)
    assert [record.getMessage() for record in caplog.records] == [
        "trainer.precision=bf16-mixed on a CPU without native bfloat16 (no avx512_bf16, amx_bf16 or bf16 among its "
        "flags): torch emulates it, slower than 32-bit; fine for checking a config, use trainer=default "
        "(precision 32-true) for speed."
    ]
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="trainlab"):
        check_bf16_hardware("32-true", torch.device("cpu"), cpuinfo=X86_WITHOUT)  # 32-bit is never emulated
        check_bf16_hardware("bf16-mixed", torch.device("cpu"), cpuinfo=X86_WITH_BF16)
        check_bf16_hardware("bf16-mixed", torch.device("cpu"), cpuinfo=X86_WITHOUT, warn=False)  # DDP's other ranks
    assert caplog.records == []


def test_bf16_on_a_gpu_without_it_is_refused_in_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    # This machine has no GPU: the answers of one without native bf16 are fed in, as the CPU's flags are above.
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: False)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "Tesla V100")
    with pytest.raises(ConfigError) as error:
        check_bf16_hardware("bf16-mixed", torch.device("cuda", 0))
    assert str(error.value) == (
        "trainer.precision=bf16-mixed needs native bfloat16 arithmetic, which this GPU Tesla V100 lacks; "
        "use trainer=gpu (precision 32-true) or trainer.precision=16-mixed."
    )
    check_bf16_hardware("16-mixed", torch.device("cuda", 0))  # float16 is what such a GPU has


def test_the_bf16_preset_builds_a_bf16_trainer_on_any_cpu(run_dir: Path, caplog: pytest.LogCaptureFixture) -> None:
    cfg = compose_config("train", ["trainer=bf16"], run_dir)
    with caplog.at_level(logging.WARNING, logger="trainlab"):
        trainer = build_trainer(cfg.trainer, callbacks=[], loggers=[])
    assert trainer.precision == "bf16-mixed"
    # Whether this CPU has bf16 decides only the warning: one where it lacks it, none where it has it.
    assert [EMULATED in record.getMessage() for record in caplog.records] == ([True] if cpu_has_bf16() is False else [])
    assert cfg.model.channels_last is True  # the CPU's bf16 convolution and pooling kernels want it
    assert cfg.trainer.max_epochs == compose_config("train", [], run_dir).trainer.max_epochs  # the rest is default


def can_hide_cpu_flags() -> bool:
    """Root with `unshare` can mount a copy of /proc/cpuinfo over it in a mount namespace of its own."""
    if os.geteuid() != 0 or shutil.which("unshare") is None or not CPUINFO.is_file():
        return False
    return subprocess.run(["unshare", "--mount", "true"], capture_output=True).returncode == 0


@pytest.mark.skipif(not can_hide_cpu_flags(), reason="hiding the CPU's bf16 flags needs root and unshare --mount")
def test_a_bf16_smoke_run_on_a_cpu_without_bf16_runs_with_one_warning(tmp_path: Path) -> None:
    """What a researcher does before submitting a GPU config: `trainer=bf16 debug=fdr` on a laptop. The CPU's bf16
    flags are hidden from the run by a copy of /proc/cpuinfo without them, mounted in the run's own namespace."""
    without = tmp_path / "cpuinfo"
    flags = CPUINFO.read_text()
    for flag in ("avx512_bf16", "amx_bf16", "bf16"):
        flags = flags.replace(f" {flag}", "")
    without.write_text(flags)
    command = f'mount --bind "{without}" /proc/cpuinfo && exec "{BIN}/trainlab-train" trainer=bf16 debug=fdr'
    result = subprocess.run(
        ["unshare", "--mount", "sh", "-c", command],
        cwd=tmp_path,
        env={**os.environ, "PYTHONUNBUFFERED": "1", "HYDRA_FULL_ERROR": "0"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    output = result.stdout + result.stderr
    assert output.count(EMULATED) == 1, output
    assert "Traceback" not in output
