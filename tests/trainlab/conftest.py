"""What the researcher's tests share: the project's configs composed with Hydra's own API, and runs of
trainlab/train.py through a plain Lightning Trainer.

These tests are the researcher's, beside their code: they import nothing of the engine (runkit; the engine's
tests are in tests/runkit/), so a change to the engine never breaks them and they stay quick
(`make test-yours`).
"""

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import DictConfig, OmegaConf

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
# On the CPU, quiet, without this machine's configs/local/ and with outputs in the test's own folder.
PLAIN = ["trainer.accelerator=cpu", "trainer.devices=1", "~local"]

# configs/_model.yaml turns channels-last batches on with bf16 precision, through a resolver that trainlab-train
# registers; composed here without it, the same rule.
if not OmegaConf.has_resolver("is_bf16"):
    OmegaConf.register_new_resolver("is_bf16", lambda precision: str(precision).startswith("bf16"))


@pytest.fixture
def compose_train(tmp_path: Path) -> Iterator[Callable[..., DictConfig]]:
    """configs/train.yaml with overrides, composed as trainlab-train composes it, writing under tmp_path."""

    def composed(*overrides: str) -> DictConfig:
        paths = [f"paths.root_dir={tmp_path}", f"paths.output_dir={tmp_path / 'run'}"]
        return compose("train", [*PLAIN, *paths, *overrides])

    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        yield composed
    GlobalHydra.instance().clear()
