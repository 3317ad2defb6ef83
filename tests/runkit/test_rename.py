"""scripts/rename.py renames the package everywhere in a copy of the repository, and refuses unusable names."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.runkit.helpers.process import GIT_SKIP_REASON, ROOT, git_reads

NEW = "acme_vision"


def copy_tracked_files(destination: Path) -> Path:
    """The repository as a fresh clone has it (tracked files and files not ignored), without git."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    for name in filter(None, listed.split("\0")):
        source = ROOT / name
        if source.is_file():  # a file deleted in the working tree but still in the index is skipped
            target = destination / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    return destination


def run_rename(repo: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(repo / "scripts" / "rename.py"), *args],
        cwd=repo,
        capture_output=True,
        text=True,
        timeout=120,
    )


def leftovers(repo: Path, word: str) -> list[str]:
    """Files whose path or text still holds `word` in any spelling."""
    found = []
    for path in repo.rglob("*"):
        if "__pycache__" in path.parts or ".pytest_cache" in path.parts:
            continue
        name = str(path.relative_to(repo))
        text = path.read_text(errors="ignore") if path.is_file() else ""
        if word in name.lower() or word in text.lower():
            found.append(name)
    return found


@pytest.fixture(scope="module")
def renamed_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not git_reads():  # the copy is what git lists
        pytest.skip(GIT_SKIP_REASON)
    repo = copy_tracked_files(tmp_path_factory.mktemp("clone") / "repo")
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)  # a clone is a git repository (.gitignore applies)
    result = run_rename(repo, NEW)
    assert result.returncode == 0, result.stderr
    assert f"Renamed trainlab -> {NEW}" in result.stdout
    return repo


def test_no_trace_of_the_old_name_remains(renamed_repo: Path) -> None:
    assert leftovers(renamed_repo, "trainlab") == []
    assert (renamed_repo / "src" / NEW / "models" / "supervised.py").is_file()
    assert not (renamed_repo / "src" / "trainlab").exists()
    assert (renamed_repo / "src" / "runkit" / "training.py").is_file()  # the engine keeps its name
    pyproject = (renamed_repo / "pyproject.toml").read_text()
    assert f'name = "{NEW}"' in pyproject
    assert f'{NEW}-train = "runkit.train:cli"' in pyproject
    assert (
        f"_target_: {NEW}.models.classification.ClassificationModule"
        in (renamed_repo / "configs" / "_classification.yaml").read_text()
    )
    assert f"{NEW.upper()}_ROOT" in (renamed_repo / "configs" / "paths" / "default.yaml").read_text()


def renamed_env(repo: Path) -> dict[str, str]:
    # The copy's src and root come first, so its package and its tests are the ones imported.
    return {**os.environ, "PYTHONPATH": f"{repo / 'src'}{os.pathsep}{repo}"}


def test_the_renamed_package_imports_from_the_copy(renamed_repo: Path) -> None:
    code = f"import {NEW}.models, runkit.config; print({NEW}.__file__); print(runkit.config.CONFIG_DIR)"
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=renamed_repo, env=renamed_env(renamed_repo), capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [str(renamed_repo / "src" / NEW / "__init__.py"), str(renamed_repo / "configs")]


@pytest.mark.slow
def test_the_renamed_trees_tests_pass(renamed_repo: Path) -> None:
    """A part of the renamed test suite: the researcher's tests, every config composes and builds, a short run trains."""
    tests = [
        f"tests/{NEW}",  # the researcher's own tests, renamed with their package
        "tests/runkit/test_configs.py",
        "tests/runkit/test_local_config.py",
        "tests/runkit/test_eval.py::test_eval_reproduces_the_runs_test_accuracy",
    ]
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", *tests],
        cwd=renamed_repo,
        env=renamed_env(renamed_repo),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert " passed" in result.stdout and " failed" not in result.stdout
    # Nothing of the old package was imported on the way: entry points included.
    code = "import sys, runkit.train, runkit.eval, runkit.predict; print([m for m in sys.modules if 'trainlab' in m])"
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=renamed_repo, env=renamed_env(renamed_repo), capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("new-pkg", "NAME='new-pkg' is not a valid Python identifier"),
        ("class", "NAME='class' is not a valid Python identifier"),
        ("trainlab", "NAME='trainlab' is already the package's name"),
        ("json", "NAME='json' is already an installed Python module"),
        ("torch", "NAME='torch' is already an installed Python module"),
    ],
)
def test_unusable_names_are_refused_and_nothing_changes(tmp_path: Path, name: str, message: str) -> None:
    repo = tmp_path / "repo"
    for part in ("scripts/rename.py", "src/trainlab/__init__.py", "pyproject.toml"):
        (repo / part).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / part, repo / part)
    before = {path: path.read_bytes() for path in repo.rglob("*") if path.is_file()}
    result = run_rename(repo, name)
    assert result.returncode == 2
    assert result.stderr.strip().startswith(f"Error: {message}")
    assert len(result.stderr.strip().splitlines()) == 1
    assert {path: path.read_bytes() for path in repo.rglob("*") if path.is_file()} == before


def test_a_folder_that_exists_under_src_is_refused(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    for part in ("scripts/rename.py", "src/trainlab/__init__.py"):
        (repo / part).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / part, repo / part)
    (repo / "src" / "mine").mkdir()
    result = run_rename(repo, "mine")
    assert result.returncode == 2
    assert (
        result.stderr.strip() == f"Error: NAME='mine' already exists as {repo / 'src' / 'mine'}; choose another name."
    )


def test_every_venv_is_left_alone(tmp_path: Path) -> None:
    """.venv-extras and benchmarks/minimal-venv hold installed files that name the package: they are not the project's."""
    repo = tmp_path / "repo"
    for part in ("scripts/rename.py", "src/trainlab/__init__.py", "pyproject.toml"):
        (repo / part).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / part, repo / part)
    installed = [repo / ".venv-extras" / "lib" / "trainlab.pth", repo / "benchmarks" / "minimal-venv" / "trainlab.txt"]
    for path in installed:
        path.parent.mkdir(parents=True)
        path.write_text("trainlab")
    for venv in (repo / ".venv-extras", repo / "benchmarks" / "minimal-venv"):
        (venv / "pyvenv.cfg").write_text("home = /usr/bin\n")
    result = run_rename(repo, "mypkg")
    assert result.returncode == 0, result.stderr
    assert (repo / "src" / "mypkg" / "__init__.py").is_file()
    assert [path.read_text() for path in installed] == ["trainlab", "trainlab"]
