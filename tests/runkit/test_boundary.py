"""Two sides, one boundary: the researcher's package (trainlab) is plain PyTorch and Lightning and imports nothing of
the engine (runkit); the engine reaches it only through config and Lightning, and its own packages form no cycle."""

import ast
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.runkit.helpers.process import ROOT

RESEARCHERS = ROOT / "src" / "trainlab"
RESEARCHERS_TESTS = ROOT / "tests" / "trainlab"
ENGINE = ROOT / "src" / "runkit"
# What the researcher's nets, models, data and callbacks may not import: the engine, and the config machinery.
FORBIDDEN = ("runkit", "hydra", "omegaconf", "hydra_plugins")
MAX_RESEARCHERS_CODE_LINES = 1500


def imported_modules(path: Path) -> Iterator[str]:
    """Every module a file imports, wherever in the file (a function's lazy import counts too)."""
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module
            yield from (f"{node.module}.{alias.name}" for alias in node.names)


def module_name(path: Path) -> str:
    return ".".join(path.relative_to(ROOT / "src").with_suffix("").parts).removesuffix(".__init__")


@pytest.mark.parametrize("path", sorted(RESEARCHERS.rglob("*.py")), ids=lambda path: module_name(path))
def test_the_researchers_side_imports_nothing_of_the_engine(path: Path) -> None:
    # The training entry (train.py) instantiates from config, with Hydra; nets, models, data and callbacks do not.
    forbidden = ("runkit", "hydra_plugins") if path == RESEARCHERS / "train.py" else FORBIDDEN
    crossing = [name for name in imported_modules(path) if name.split(".")[0] in forbidden]
    assert crossing == [], f"{module_name(path)} imports {crossing}"


@pytest.mark.parametrize("path", sorted(RESEARCHERS_TESTS.rglob("*.py")), ids=lambda path: path.name)
def test_the_researchers_tests_import_nothing_of_the_engine_or_its_tests(path: Path) -> None:
    # Their tests run the researcher's code with Hydra and plain Lightning only, so an engine change never breaks them.
    crossing = [
        name for name in imported_modules(path) if name.split(".")[0] == "runkit" or name.startswith("tests.runkit")
    ]
    assert crossing == [], f"{path.relative_to(ROOT)} imports {crossing}"


def test_importing_a_net_loads_neither_hydra_nor_the_engine() -> None:
    code = (
        "import sys, trainlab.nets.cnn, trainlab.nets.mlp, trainlab.nets.linear; "
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'hydra', 'omegaconf', 'runkit'}))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def package_graph() -> dict[str, set[str]]:
    """runkit's subpackages and modules (config, runs, checkpoints, ...), each with those it imports."""
    graph: dict[str, set[str]] = {}
    for path in ENGINE.rglob("*.py"):
        parts = module_name(path).split(".")
        if len(parts) < 2:  # runkit/__init__.py: the package's face, which may import any of them
            continue
        for name in imported_modules(path):
            target = name.split(".")
            if target[0] == "runkit" and len(target) > 1 and target[1] != parts[1]:
                graph.setdefault(parts[1], set()).add(target[1])
    return graph


def cycle_in(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of the graph as the path around it, or None."""
    done: set[str] = set()

    def visit(node: str, path: list[str]) -> list[str] | None:
        if node in path:
            return path[path.index(node) :] + [node]
        if node in done:
            return None
        for successor in sorted(graph.get(node, ())):
            if found := visit(successor, [*path, node]):
                return found
        done.add(node)
        return None

    return next((found for node in sorted(graph) if (found := visit(node, []))), None)


def test_the_engines_packages_form_no_import_cycle() -> None:
    graph = package_graph()
    assert {"config", "runs", "process", "checkpoints", "training"} <= set(graph)  # the graph is really read
    assert cycle_in(graph) is None, " -> ".join(cycle_in(graph))


def test_a_cycle_is_found_where_there_is_one() -> None:
    assert cycle_in({"config": {"runs"}, "runs": {"process"}, "process": {"config"}}) == [
        "config",
        "runs",
        "process",
        "config",
    ]
    assert cycle_in({"runs": {"config"}, "process": {"config"}}) is None


def code_lines(path: Path) -> int:
    """Lines of code: not blank, not comments, not docstrings."""
    text = path.read_text()
    docstrings: set[int] = set()
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef) and ast.get_docstring(node, clean=False):
            docstrings.update(range(node.body[0].lineno, node.body[0].end_lineno + 1))
    lines = enumerate(text.splitlines(), start=1)
    return sum(
        1 for number, line in lines if line.strip() and not line.lstrip().startswith("#") and number not in docstrings
    )


def test_the_researchers_side_stays_small() -> None:
    """What a researcher owns and reads: nets, models, data and callbacks, at most 1,500 lines of code."""
    total = sum(code_lines(path) for path in RESEARCHERS.rglob("*.py"))
    assert 500 < total <= MAX_RESEARCHERS_CODE_LINES, total
