"""trainer=bf16: bfloat16 mixed precision where the hardware computes it, a one-line refusal where it does not."""

from pathlib import Path

import pytest
import torch

from tests.helpers.config import compose_config
from trainlab.building import build_trainer
from trainlab.config import ConfigError
from trainlab.process.precision import check_bf16_hardware, cpu_has_bf16

X86_WITH_BF16 = "processor\t: 0\nflags\t\t: fpu sse2 avx2 avx512f avx512_bf16 amx_tile amx_bf16\n"
X86_WITHOUT = "processor\t: 0\nflags\t\t: fpu sse2 avx2 avx512f\n"
ARM_WITH_BF16 = "processor\t: 0\nFeatures\t: fp asimd sve bf16 i8mm\n"


@pytest.mark.parametrize(("cpuinfo", "has"), [(X86_WITH_BF16, True), (X86_WITHOUT, False), (ARM_WITH_BF16, True)])
def test_bf16_is_read_from_the_cpus_feature_flags(cpuinfo: str, has: bool) -> None:
    assert cpu_has_bf16(cpuinfo) is has


def test_bf16_on_a_cpu_without_it_is_refused_in_one_line() -> None:
    with pytest.raises(ConfigError) as error:
        check_bf16_hardware("bf16-mixed", torch.device("cpu"), cpuinfo=X86_WITHOUT)
    assert str(error.value) == (
        "trainer.precision=bf16-mixed needs native bfloat16 arithmetic, which this CPU (no avx512_bf16, amx_bf16 "
        "or bf16 among its flags) lacks: emulated, it would be slower than 32-bit; use trainer=default (precision 32-true)."
    )
    check_bf16_hardware("32-true", torch.device("cpu"), cpuinfo=X86_WITHOUT)  # 32-bit runs anywhere
    check_bf16_hardware("bf16-mixed", torch.device("cpu"), cpuinfo=X86_WITH_BF16)


def test_the_bf16_preset_builds_a_bf16_trainer_where_the_cpu_has_it(run_dir: Path) -> None:
    cfg = compose_config("train", ["trainer=bf16"], run_dir)
    if cpu_has_bf16() is False:  # this machine cannot: the preset says so
        with pytest.raises(ConfigError, match="needs native bfloat16 arithmetic"):
            build_trainer(cfg.trainer, callbacks=[], loggers=[])
        return
    trainer = build_trainer(cfg.trainer, callbacks=[], loggers=[])
    assert trainer.precision == "bf16-mixed"
    assert cfg.model.channels_last is True  # the CPU's bf16 convolution and pooling kernels want it
    assert cfg.trainer.max_epochs == compose_config("train", [], run_dir).trainer.max_epochs  # the rest is default
