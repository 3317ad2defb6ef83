"""scripts/benchmark.py and its package scripts/bench: the scripts import the package and never the other way
round (no import cycle, no sys.path edits), and `--only` accepts exactly the sections of the table."""

import ast
import importlib
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from tests.helpers.process import ROOT

SCRIPTS = ROOT / "scripts"
ENTRY_SCRIPTS = ("benchmark", "benchmark_scaling", "benchmark_launchers")


def benchmark_modules() -> dict[str, Path]:
    """Module name (as imported with scripts/ on sys.path) -> file, for the entry scripts and the package."""
    modules = {name: SCRIPTS / f"{name}.py" for name in ENTRY_SCRIPTS}
    for path in sorted((SCRIPTS / "bench").glob("*.py")):
        modules["bench" if path.stem == "__init__" else f"bench.{path.stem}"] = path
    return modules


def imported_names(path: Path) -> set[str]:
    """Every module an import anywhere in the file names, those inside functions included (a lazy import
    closes a cycle as surely as one at the top), with `from X import y` giving both X and X.y."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def import_graph() -> dict[str, set[str]]:
    modules = benchmark_modules()
    return {name: imported_names(path) & set(modules) for name, path in modules.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """A path of imports that comes back to its start, or None."""
    done: set[str] = set()

    def visit(node: str, path: list[str]) -> list[str] | None:
        if node in path:
            return [*path[path.index(node) :], node]
        if node in done:
            return None
        for target in sorted(graph[node]):
            if cycle := visit(target, [*path, node]):
                return cycle
        done.add(node)
        return None

    return next((cycle for node in sorted(graph) if (cycle := visit(node, []))), None)


def test_the_benchmark_modules_import_one_another_without_a_cycle() -> None:
    graph = import_graph()
    assert {"bench.sections", "bench.common", "bench.scaling"} <= set(graph)  # the walk found the package
    assert find_cycle(graph) is None, " -> ".join(find_cycle(graph) or [])


def test_the_package_imports_no_script_and_nothing_edits_sys_path() -> None:
    for name, targets in import_graph().items():
        if name == "bench" or name.startswith("bench."):
            assert not targets & set(ENTRY_SCRIPTS), f"{name} imports a script: {targets & set(ENTRY_SCRIPTS)}"
    for name, path in benchmark_modules().items():
        tree = ast.parse(path.read_text())
        edits = [node for node in ast.walk(tree) if isinstance(node, ast.Attribute) and node.attr == "path"]
        assert not [node for node in edits if isinstance(node.value, ast.Name) and node.value.id == "sys"], name
        assert not {target for target in imported_names(path) if target.split(".")[0] == "tests"}, name


def test_the_finding_of_cycles_finds_one() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None


def test_the_launcher_benchmark_loads_no_torch() -> None:
    """scripts/benchmark_launchers.py only starts processes: its share of bench keeps torch out of it."""
    code = "import sys, bench.multirun; print(sorted({m.split('.')[0] for m in sys.modules} & {'torch', 'lightning'}))"
    out = subprocess.run([sys.executable, "-c", code], cwd=SCRIPTS, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.fixture
def scripts(monkeypatch: pytest.MonkeyPatch) -> tuple[ModuleType, ModuleType]:
    """(benchmark, bench.sections), imported as `python scripts/benchmark.py` imports them."""
    monkeypatch.syspath_prepend(str(SCRIPTS))
    return importlib.import_module("benchmark"), importlib.import_module("bench.sections")


def test_only_accepts_the_sections_of_the_table_and_no_other(scripts: tuple[ModuleType, ModuleType]) -> None:
    benchmark, sections = scripts
    parser = benchmark.parser()
    for name in sections.SECTIONS:
        assert parser.parse_args(["--only", name]).only == [name]
    assert parser.parse_args(["--only", "scaling,epoch"]).only == ["scaling", "epoch"]
    assert parser.parse_args([]).only is None  # the whole table
    for wrong in ("nonesuch", "epoch,nonesuch", ","):
        with pytest.raises(SystemExit):
            parser.parse_args(["--only", wrong])


def test_the_sections_the_docs_name_are_in_the_table(scripts: tuple[ModuleType, ModuleType]) -> None:
    _, sections = scripts
    texts = (ROOT / "README.md").read_text() + (ROOT / "docs" / "benchmarks.md").read_text()
    named = {name for found in re.findall(r"--only ([\w|,]+)", texts) for name in re.split(r"[|,]", found)}
    assert {"epoch", "accuracy", "scaling"} <= named  # the pattern still finds what the docs say
    assert named <= set(sections.SECTIONS)


def test_no_two_sections_write_the_same_entry(scripts: tuple[ModuleType, ModuleType]) -> None:
    _, sections = scripts
    keys = [key for section in sections.SECTIONS.values() for key in section.keys]
    assert len(keys) == len(set(keys))


def test_the_sections_run_in_the_table_order_and_quick_leaves_the_slow_ones_out(
    scripts: tuple[ModuleType, ModuleType], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _, sections = scripts
    ran: list[str] = []

    def section(name: str, slow: bool = False) -> object:
        return sections.Section(lambda run: ran.append(name) or {name: run.repeats}, (name,), slow=slow)

    monkeypatch.setattr(sections, "SECTIONS", {"a": section("a"), "b": section("b", slow=True), "c": section("c")})
    run = importlib.import_module("bench.common").Run(tmp_path, repeats=2, num_train=10, quick=True)
    assert sections.measure_sections(["c", "a"], run, skip_slow=False) == {"a": 2, "c": 2}
    assert sections.measure_sections(["a", "b", "c"], run, skip_slow=True) == {"a": 2, "b": None, "c": 2}
    assert ran == ["a", "c", "a", "c"]
