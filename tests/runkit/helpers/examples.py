"""The worked examples of the README and docs/: their files, byte for byte as a reader copies them out."""

import importlib
import importlib.util
import re
import shutil
import sys
from pathlib import Path

import pytest

from tests.runkit.helpers.process import ROOT

# Every page whose commands and examples are checked: the README and the longer material in docs/.
PAGES = {"README.md": (ROOT / "README.md").read_text()} | {
    f"docs/{p.name}": p.read_text() for p in sorted((ROOT / "docs").glob("*.md"))
}
# A worked example's file: its path on a line of its own, then the code block that is the whole file.
EXAMPLE_FILE = re.compile(
    r"^`((?:src/trainlab|configs)/\S+)`:\n\n```(?:python|yaml)\n(.*?)```", re.DOTALL | re.MULTILINE
)


def example_files() -> dict[str, str]:
    """The worked examples' files, by their path in the repository."""
    return {path: body for text in PAGES.values() for path, body in EXAMPLE_FILE.findall(text)}


def load_example_module(path: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Import an example file under its module name (src/trainlab/nets/x.py -> trainlab.nets.x), for one test."""
    module_name = path.removeprefix("src/").removesuffix(".py").replace("/", ".")
    module = importlib.util.module_from_spec(importlib.util.spec_from_loader(module_name, loader=None))
    exec(compile(example_files()[path], path, "exec"), module.__dict__)  # the page's own code, as a user pastes it
    monkeypatch.setitem(sys.modules, module_name, module)
    parent, _, leaf = module_name.rpartition(".")
    monkeypatch.setattr(importlib.import_module(parent), leaf, module, raising=False)


def project_with_examples(folder: Path) -> Path:
    """A copy of the project's packages and configs with every example file added, in `folder`: run with
    PYTHONPATH=<folder>/src, its console scripts import the copy, and find the copied configs beside it."""
    for package in ("trainlab", "runkit"):  # runkit finds the configs beside its own copy
        ignore = shutil.ignore_patterns("__pycache__")
        shutil.copytree(ROOT / "src" / package, folder / "src" / package, ignore=ignore)
    shutil.copytree(ROOT / "configs", folder / "configs")
    for path, text in example_files().items():
        (folder / path).write_text(text)
    return folder / "src"
