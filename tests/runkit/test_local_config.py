"""configs/local/default.yaml, when a machine has one, is composed into every entry point; git never versions it."""

import shutil
import subprocess
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import DictConfig, OmegaConf

from runkit.config import CONFIG_DIR
from tests.runkit.helpers.process import GIT_SKIP_REASON, ROOT, git_reads

LOCAL = """# @package _global_
paths:
  data_dir: /scratch/datasets
trainer:
  max_epochs: 7
  accelerator: gpu
"""


def compose_from(config_dir: Path, name: str, overrides: list[str]) -> DictConfig:
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(config_dir), version_base="1.3"):
        return compose(name, overrides=overrides)


@pytest.fixture
def configs_with_local(tmp_path: Path) -> Path:
    """A copy of configs/ with a local/default.yaml, so the repository itself is left as it is."""
    copy = tmp_path / "configs"
    shutil.copytree(CONFIG_DIR, copy)
    (copy / "local" / "default.yaml").write_text(LOCAL)  # replaces any file of the developer running the tests
    return copy


@pytest.mark.parametrize("name", ["train", "eval", "predict"])
def test_local_default_is_picked_up(configs_with_local: Path, name: str) -> None:
    cfg = compose_from(configs_with_local, name, ["ckpt_path=x.ckpt"] if name != "train" else [])
    assert cfg.paths.data_dir == "/scratch/datasets"
    assert cfg.trainer.max_epochs == 7
    assert cfg.trainer.accelerator == "gpu"


def test_command_line_and_debug_still_win_over_local(configs_with_local: Path) -> None:
    cfg = compose_from(configs_with_local, "train", ["trainer.max_epochs=2"])
    assert cfg.trainer.max_epochs == 2
    cfg = compose_from(configs_with_local, "train", ["debug=fdr"])
    assert cfg.trainer.accelerator == "cpu"  # debug configs come after local ones
    assert cfg.trainer.max_epochs == 7 and cfg.task_name == "debug"


def test_without_a_local_file_the_defaults_stand(tmp_path: Path) -> None:
    copy = tmp_path / "configs"
    shutil.copytree(CONFIG_DIR, copy)
    (copy / "local" / "default.yaml").unlink(missing_ok=True)
    cfg = compose_from(copy, "train", [])
    assert OmegaConf.to_container(cfg.paths)["data_dir"] == "${paths.root_dir}/data"
    assert cfg.trainer.max_epochs == OmegaConf.load(copy / "trainer" / "default.yaml").max_epochs


def test_the_example_composes() -> None:
    cfg = compose_from(Path(CONFIG_DIR), "train", ["local=example"])
    assert cfg.trainer.accelerator == "gpu"


@pytest.mark.skipif(not git_reads(), reason=GIT_SKIP_REASON)
def test_git_ignores_local_configs_but_keeps_the_example() -> None:
    def ignored(path: str) -> bool:
        return subprocess.run(["git", "check-ignore", "-q", path], cwd=ROOT).returncode == 0

    assert ignored("configs/local/default.yaml")
    assert ignored("configs/local/my_cluster.yaml")
    assert not ignored("configs/local/example.yaml")
    assert not ignored("configs/local/.gitkeep")


def test_the_slurm_docs_local_config_sets_the_cluster_for_every_sweep(tmp_path: Path) -> None:
    """docs/slurm.md's configs/local/default.yaml for a real cluster: hydra/launcher=slurm with its settings."""
    page = (ROOT / "docs" / "slurm.md").read_text()
    [example] = [block for block in page.split("```yaml\n")[1:] if "hydra/launcher: slurm" in block]
    copy = tmp_path / "configs"
    shutil.copytree(CONFIG_DIR, copy)
    (copy / "local" / "default.yaml").write_text(example.split("```")[0])
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(copy), version_base="1.3"):
        launcher = compose("train", overrides=["seed=1"], return_hydra_config=True).hydra.launcher
    assert launcher._target_ == "hydra_plugins.trainlab_slurm_launcher.slurm_launcher.SlurmLauncher"
    assert (launcher.partition, launcher.account, launcher.gpus_per_node, launcher.timeout_min) == (
        "gpu",
        "my_lab",
        1,
        240,
    )
    assert launcher.max_num_timeout == 3 and launcher.additional_parameters == {"qos": "normal"}
