"""scripts/benchmark.py and its package scripts/bench: the scripts import the package and never the other way
round (no import cycle, no sys.path edits), `--only` accepts exactly the sections of the table, and
`--accelerator gpu` reaches the sections that honour it, and stops at once where it cannot be honoured."""

import ast
import importlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType, SimpleNamespace

import pytest

from tests.runkit.helpers.process import ROOT

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


def test_accelerator_is_cpu_or_gpu_and_cpu_by_default(scripts: tuple[ModuleType, ModuleType]) -> None:
    benchmark, _ = scripts
    parser = benchmark.parser()
    assert parser.parse_args([]).accelerator == "cpu"
    assert parser.parse_args(["--accelerator", "gpu", "--only", "epoch,accuracy"]).accelerator == "gpu"
    with pytest.raises(SystemExit):
        parser.parse_args(["--accelerator", "tpu"])


def test_gpu_with_a_cpu_only_section_is_a_usage_error(scripts: tuple[ModuleType, ModuleType]) -> None:
    """Checked before CUDA is looked for, so the same on any machine."""
    benchmark, sections = scripts
    assert {name for name, section in sections.SECTIONS.items() if section.gpu} == {"epoch", "accuracy"}
    for name in sections.cpu_only(list(sections.SECTIONS)):
        with pytest.raises(SystemExit) as stop:
            benchmark.arguments(["--accelerator", "gpu", "--only", f"epoch,{name}"])
        assert stop.value.code == 2
    assert benchmark.arguments(["--only", "data,precision"]).accelerator == "cpu"


@pytest.mark.slow  # a whole benchmark process: torch, Lightning and Optuna imported
def test_gpu_without_cuda_stops_at_once_with_one_line(tmp_path: Path) -> None:
    """No CUDA device visible (a GPU machine too): exit code 1, one line, nothing measured or written."""
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
    out = tmp_path / "out"
    command = [sys.executable, str(SCRIPTS / "benchmark.py"), "--accelerator", "gpu", "--only", "epoch"]
    result = subprocess.run([*command, "--out", str(out)], capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 1, result.stderr
    lines = result.stderr.strip().splitlines()
    assert lines[-1].startswith("scripts/benchmark.py --accelerator gpu needs a CUDA GPU"), result.stderr
    assert "torch.cuda.is_available() is False" in lines[-1]
    assert [line for line in lines if "Traceback" in line] == []
    assert result.stdout == ""
    assert not out.exists()


def test_the_template_runs_follow_the_accelerator(scripts: tuple[ModuleType, ModuleType], tmp_path: Path) -> None:
    """The in-process fits' overrides, and those of the `trainlab-train` runs of accuracy and start-up, compose
    (validated) to a Trainer on one device of the run's accelerator."""
    common, fits, accuracy = (importlib.import_module(f"bench.{name}") for name in ("common", "fits", "accuracy"))
    from runkit.config import compose

    assert fits.template_overrides(100, 32)[1:3] == ["trainer.accelerator=cpu", "trainer.devices=1"]
    gpu_run = common.Run(tmp_path, repeats=1, num_train=100, quick=True, accelerator="gpu")
    assert common.Run(tmp_path, repeats=1, num_train=100, quick=True).trainer_overrides == [
        "trainer.accelerator=cpu",
        "trainer.devices=1",
    ]
    assert gpu_run.device == "cuda"
    with pytest.raises(ValueError):
        common.trainer_overrides("tpu")
    template = compose("train", fits.template_overrides(100, 32, accelerator="gpu"), tmp_path / "template")
    assert (template.trainer.accelerator, template.trainer.devices) == ("gpu", 1)
    data = accuracy.MNIST_SIZED_SYNTHETIC
    bf16 = compose("train", accuracy.command(data, ["trainer=bf16"], 1, gpu_run.trainer_overrides), tmp_path / "acc")
    assert (bf16.trainer.accelerator, bf16.trainer.devices, bf16.trainer.precision) == ("gpu", 1, "bf16-mixed")


def test_the_epoch_section_trains_each_contender_on_the_runs_device(
    scripts: tuple[ModuleType, ModuleType], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Run.template composes with run.accelerator; the hand-written loop gets run.device, the bare Trainer
    run.accelerator. The fits themselves are stand-ins: no GPU is needed to check what they are handed."""
    common, fits, epoch = (importlib.import_module(f"bench.{name}") for name in ("common", "fits", "epoch"))
    handed: dict[str, object] = {}
    datamodule = SimpleNamespace(splits={"train": (list(range(50)), None)})

    def setup(workdir: Path, num_train: int, batch_size: int, accelerator: str = "cpu") -> tuple[object, object]:
        handed["template"] = accelerator
        return SimpleNamespace(trainer=SimpleNamespace(accelerator=accelerator)), datamodule

    def fit(name: str) -> object:
        def fake(cfg: object, data: object, **kwargs: object) -> object:
            handed[name] = kwargs or cfg.trainer.accelerator
            return fits.Fit(3.0, [1.0, 1.0, 1.0], None)

        return fake

    monkeypatch.setattr(fits, "template_setup", setup)
    for name in ("hand_written_fit", "template_fit", "lightning_floor_fit"):
        monkeypatch.setattr(epoch, name, fit(name))
    results = epoch.epoch_results(common.Run(tmp_path, repeats=1, num_train=50, quick=True, accelerator="gpu"))
    assert handed == {
        "template": "gpu",
        "hand_written_fit": {"device": "cuda"},
        "template_fit": "gpu",
        "lightning_floor_fit": {"accelerator": "gpu"},
    }
    assert results["epoch"]["ratio_template_over_hand"] == 1.0


def test_on_the_gpu_the_cpu_only_sections_are_not_measured_and_the_report_names_the_device(
    scripts: tuple[ModuleType, ModuleType], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    benchmark, sections = scripts
    common = importlib.import_module("bench.common")

    def section(name: str, gpu: bool) -> object:
        return sections.Section(lambda run: {name: {"device": f"{run.accelerator} (H200)"}}, (name,), gpu=gpu)

    monkeypatch.setattr(sections, "SECTIONS", {"a": section("a", gpu=True), "b": section("b", gpu=False)})
    gpu_run = common.Run(tmp_path, repeats=1, num_train=10, quick=False, accelerator="gpu")
    results = sections.measure_sections(["a", "b"], gpu_run, skip_slow=False)
    assert results == {"a": {"device": "gpu (H200)"}, "b": None}
    report = benchmark.markdown({"machine": {"accelerator": "gpu"}, "epoch": {"device": "gpu (H200)"}, **results})
    assert report.splitlines()[0] == "Device: epoch, a on gpu (H200); every other figure on the CPU."
    assert "| b | not measured |" in report
    assert benchmark.markdown({"epoch": {"device": "cpu", "template_s": 1.0}}).splitlines()[0] == (
        "Device: every figure below was measured on the CPU."
    )


# --- the `whole` section: trainlab-train against the hand-written script, whole processes ---------------------------
def test_the_hand_loop_builds_the_templates_net_with_its_initial_weights(
    scripts: tuple[ModuleType, ModuleType], tmp_path: Path
) -> None:
    """bench/hand_loop.py's net is experiment=mnist_cnn's: as many parameters, the same shapes in the same order,
    and, seeded alike (the template seeds, then builds its data module and model), the same initial weights."""
    import lightning.pytorch as pl
    import torch

    from runkit.building import build_model
    from runkit.config import compose

    hand_loop = importlib.import_module("bench.hand_loop")
    cfg = compose("train", ["experiment=mnist_cnn", f"data.data_dir={tmp_path}", "seed=3"], tmp_path / "run")
    pl.seed_everything(cfg.seed, verbose=False)
    template = build_model(cfg).net
    torch.manual_seed(cfg.seed)
    hand = hand_loop.build_net()
    assert (
        sum(p.numel() for p in hand.parameters()) == sum(p.numel() for p in template.parameters()) == 215_194
    )  # 624 + 6,944 + 205,056 + 2,570
    pairs = list(zip(hand.parameters(), template.parameters(), strict=True))
    assert [a.shape for a, _ in pairs] == [b.shape for _, b in pairs]
    assert all(torch.equal(a, b) for a, b in pairs)


def test_the_hand_loop_imports_neither_trainlab_nor_lightning() -> None:
    roots = {name.split(".")[0] for name in imported_names(SCRIPTS / "bench" / "hand_loop.py")}
    assert {"torch", "numpy"} <= roots
    assert not roots & {"trainlab", "lightning", "pytorch_lightning", "hydra", "tests", "bench"}, roots


def test_the_hand_loop_reads_idx_files_raw_and_gzipped(scripts: tuple[ModuleType, ModuleType], tmp_path: Path) -> None:
    """The IDX files the section writes read back as written, and so do their .gz copies (the template takes both)."""
    import gzip

    import torch

    hand_loop, whole = (importlib.import_module(f"bench.{name}") for name in ("hand_loop", "whole_process"))
    images = torch.randint(0, 256, (5, 28, 28), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    whole.write_idx(tmp_path / "images", images)
    assert torch.equal(torch.from_numpy(hand_loop.read_idx(tmp_path / "images").copy()), images)
    (tmp_path / "packed.gz").write_bytes(gzip.compress((tmp_path / "images").read_bytes()))
    assert torch.equal(torch.from_numpy(hand_loop.read_idx(tmp_path / "packed").copy()), images)


@pytest.mark.slow  # four small fits in this process, with a hand-written step beside each of their steps: ~25 s
def test_the_steps_section_pairs_every_step_but_each_epochs_first(
    scripts: tuple[ModuleType, ModuleType], tmp_path: Path
) -> None:
    """`steps` in quick mode: 10 batches an epoch, two epochs; the first batch of each epoch follows a validation,
    so 9 steps an epoch are paired, for the template and for the three bare Trainers alike (one runs the template's
    own module). Each step's phases are
    there for both sides; only the Trainers fetch a batch between steps (the hand-written step reuses theirs)."""
    common, steps = (importlib.import_module(f"bench.{name}") for name in ("common", "steps"))
    entry = steps.measure(common.Run(tmp_path, repeats=1, num_train=10, quick=True))["steps"]
    for who in ("template", "bare_lightning_same_module", "bare_lightning", "bare_lightning_manual"):
        assert entry[f"{who}_steps_paired"] == 2 * 9, entry
        assert entry[f"{who}_step_ms"] > 0 and entry[f"hand_step_beside_{who}_ms"] > 0, entry
        ratio = entry[f"paired_ratio_{who}_over_hand"]
        assert ratio["min"] <= ratio["median"] <= ratio["max"], entry
        fit, hand = entry[f"{who}_phases_ms"], entry[f"hand_phases_beside_{who}_ms"]
        assert list(fit) == list(hand) == list(steps.PHASES), entry
        assert all(fit[phase] > 0 and hand[phase] > 0 for phase in ("to_backward", "backward", "optimizer")), entry
        assert fit["between_batches"] > 0 and hand["between_batches"] == 0, entry


@pytest.mark.slow  # four whole processes (two trainlab-train runs) and the benchmark's own: about a minute
def test_the_whole_section_times_both_processes_to_their_accuracy(tmp_path: Path) -> None:
    """`--quick --only whole`: tiny synthetic digits, seed 1. The processes' seconds and test accuracies, the
    ratios (whole and training passes alone, against both hand-written runs) and the breakdowns are in
    results.json and the summary in results.md. The hand-written script, the
    template's recipe seeded alike, learns the easy digits well past chance (10%) in its 16 steps, and to the
    template's own accuracy (they train alike, step for step; measured identical)."""
    out = tmp_path / "out"
    command = [sys.executable, str(SCRIPTS / "benchmark.py"), "--quick", "--only", "whole", "--out", str(out)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    failures = result.stderr[-3000:]  # a process that failed says why there
    assert result.returncode == 0, failures
    entry = json.loads((out / "results.json").read_text())["whole_process"]
    assert entry["seeds"] == [1]
    seconds, accuracy = entry["synthetic_seconds"], entry["synthetic_test_acc"]
    runs = ("template", "hand", "hand_keeping_freed_memory")
    assert all(len(seconds[who]) == 1 and seconds[who][0] > 0 for who in runs), seconds
    template_acc, hand_acc = accuracy["template"][0], accuracy["hand"][0]
    assert None not in (template_acc, hand_acc), failures
    assert hand_acc >= 0.5, (accuracy, failures)
    assert abs(hand_acc - template_acc) <= 0.01, (accuracy, failures)
    ratio = entry["synthetic_ratio_template_over_hand"]
    assert ratio["per_seed"] == [ratio["median"]] and ratio["median"] == pytest.approx(
        seconds["template"][0] / seconds["hand"][0], rel=0.01
    )
    assert entry["synthetic_both_reached_99pct"] is False and entry["synthetic_goal_met"] is False  # tiny data
    template_fit = entry["synthetic_template_breakdown_s"]["fit_s"]
    for hand in ("hand", "hand_keeping_freed_memory"):
        fit_ratio = entry[f"synthetic_fit_ratio_template_over_{hand}"]
        hand_fit = entry[f"synthetic_{hand}_breakdown_s"]["fit_s"]
        assert fit_ratio["median"] == pytest.approx(template_fit / hand_fit, rel=0.05), (fit_ratio, template_fit)
    like_for_like = entry["synthetic_fit_ratio_template_over_hand_keeping_freed_memory"]["median"]
    assert entry["synthetic_fit_goal_met"] == (like_for_like <= 1.05)
    for who in ("template", "hand", "hand_keeping_freed_memory"):
        phases = entry[f"synthetic_{who}_breakdown_s"]
        assert phases is not None, failures
        assert set(phases) == {"startup_s", "data_s", "fit_s", "validation_s", "test_s", "other_s", "total_s"}
        # Reading the quick run's few thousand images takes milliseconds: data_s, rounded to 0.01 s, may read 0.0.
        assert all(phases[name] > 0 for name in phases if name not in ("other_s", "data_s")), phases
        assert 0 <= phases["data_s"] < phases["startup_s"] < phases["total_s"], phases
    summary = (out / "results.md").read_text()
    assert "Whole process, synthetic: template/hand" in summary and "Training passes alone" in summary
