"""Each run folder records its tags, code version, library versions and command line, and keeps the config tree."""

import os
import platform
import shlex
import subprocess
import sys
from pathlib import Path

import lightning
import pytest
import torch
from omegaconf import OmegaConf

from runkit.runs.info import RUN_INFO_FILE, write_code_diff, write_run_info
from runkit.training import start_run, train
from tests.runkit.helpers.config import compose_config
from tests.runkit.helpers.process import GIT_SKIP_REASON, ROOT, git_reads, run_script
from tests.runkit.helpers.tensorboard import read_hparams

SMALL = [
    "data.num_train=256",
    "data.num_val=64",
    "data.num_test=64",
    "data.batch_size=32",
    "trainer.max_epochs=1",
    "callbacks=none",
]


def git(*args: str) -> str:
    return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()


@pytest.mark.skipif(not git_reads(), reason=GIT_SKIP_REASON)
def test_start_run_writes_run_info_and_the_config_tree(run_dir: Path) -> None:
    cfg = compose_config("train", ["tags=[baseline,cnn]", "extras.print_config=true"], run_dir)
    start_run(cfg)
    info = OmegaConf.to_container(OmegaConf.load(run_dir / RUN_INFO_FILE))
    assert info["tags"] == ["baseline", "cnn"]
    dirty = bool(git("status", "--porcelain"))
    assert {key: info["git"][key] for key in ("commit", "dirty")} == {
        "commit": git("rev-parse", "HEAD"),
        "dirty": dirty,
    }
    assert (info["git"].get("diff") == "code.diff") == dirty == (run_dir / "code.diff").is_file()
    assert info["packages"]["torch"] == torch.__version__.split("+")[0]  # the distribution version, no local tag
    assert info["packages"]["lightning"] == lightning.__version__
    assert info["packages"]["hydra-core"] and info["packages"]["torchmetrics"]
    assert info["python"] == platform.python_version()
    assert info["command"] == shlex.join(sys.argv)  # this process's own command line (pytest's, or a worker's)
    tree = (run_dir / "config_tree.log").read_text()
    assert "CONFIG" in tree and "baseline" in tree


def test_a_second_record_never_replaces_the_first(run_dir: Path) -> None:
    first = write_run_info(compose_config("train", ["tags=[first]"], run_dir), run_dir)
    second = write_run_info(compose_config("train", ["tags=[second]"], run_dir), run_dir)
    assert (first.name, second.name) == (RUN_INFO_FILE, "run_info_1.yaml")
    assert OmegaConf.load(first).tags == ["first"]
    assert OmegaConf.load(second).tags == ["second"]


def test_tags_are_in_the_hyperparameters_tab(run_dir: Path) -> None:
    train(compose_config("train", [*SMALL, "tags=[alpha,beta]"], run_dir))
    hparams, _ = read_hparams(run_dir)
    assert hparams["tags"] == "['alpha', 'beta']"


@pytest.mark.slow  # a whole trainlab-train process: with the slow tests, so the quick loop stays under 2 minutes
def test_cli_run_folder_has_run_info_with_the_command_line(tmp_path: Path) -> None:
    args = [
        "debug=fdr",
        "tags=[cli,smoke]",
        "extras.print_config=true",
        f"paths.log_dir={tmp_path / 'logs'}",
        "data.num_train=128",
        "data.num_val=32",
        "data.num_test=32",
    ]
    result = run_script("train", args, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    [run_folder] = (tmp_path / "logs" / "debug" / "runs").iterdir()
    info = OmegaConf.load(run_folder / RUN_INFO_FILE)
    program, *given = shlex.split(info.command)
    assert Path(program).name == "trainlab-train" and given == args
    assert list(info.tags) == ["cli", "smoke"]
    assert info.cwd == str(tmp_path)
    assert (run_folder / "config_tree.log").is_file()


def test_a_dirty_tree_saves_its_diff_and_names_its_untracked_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # git as installed, without this user's or this machine's settings (commit.gpgsign, hooks, diff.noprefix, colour).
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", os.devnull)
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    repo = tmp_path / "repo"
    repo.mkdir()
    for command in (["init", "-q"], ["config", "user.email", "a@b.c"], ["config", "user.name", "a"]):
        subprocess.run(["git", *command], cwd=repo, check=True)
    (repo / "model.py").write_text("width = 32\n")
    subprocess.run(["git", "add", "model.py"], cwd=repo, check=True)
    subprocess.run(["git", "commit", "-q", "-m", "first"], cwd=repo, check=True)
    assert not write_code_diff(tmp_path / "clean.diff", repo=repo)  # a clean tree: nothing to save
    assert not (tmp_path / "clean.diff").exists()

    (repo / "model.py").write_text("width = 64\n")
    (repo / "notes.py").write_text("new = True\n")
    assert write_code_diff(tmp_path / "code.diff", repo=repo)
    diff = (tmp_path / "code.diff").read_text()
    assert "# untracked, not in this diff: notes.py" in diff
    assert "-width = 32" in diff and "+width = 64" in diff
    # the diff brings the commit back to the tree the run had
    subprocess.run(["git", "checkout", "-q", "model.py"], cwd=repo, check=True)
    subprocess.run(["git", "apply", str(tmp_path / "code.diff")], cwd=repo, check=True)
    assert (repo / "model.py").read_text() == "width = 64\n"
