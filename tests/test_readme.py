"""The README cannot drift from the code: every command in its code blocks composes, every make target exists,
and the worked example (a model, a datamodule and an experiment) trains as written."""

import importlib
import importlib.util
import re
import shlex
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.override_parser.overrides_parser import OverridesParser

from tests.helpers.config import compose_config
from tests.helpers.process import ROOT
from trainlab.config import CONFIG_DIR
from trainlab.training import train

README = (ROOT / "README.md").read_text()
MAKEFILE = (ROOT / "Makefile").read_text()
PYPROJECT = (ROOT / "pyproject.toml").read_text()
CODE_BLOCK = re.compile(r"^```(\w*)\n(.*?)^```", re.MULTILINE | re.DOTALL)
PLACEHOLDER = re.compile(r"<[^<>\s]+>")  # <run>, <timestamp>: stand for a user's own value
ENTRY_POINT = re.compile(r"(?:^|/)trainlab-(\w+)$")
# Hydra flags that take a value, and what the value is; the overrides are what is checked.
FLAGS_WITH_VALUE = {"--cfg", "-c", "--package", "-p", "--config-path", "-cp", "--config-dir", "-cd", "--info"}
CONFIG_NAME_FLAGS = {"--config-name", "-cn"}


@dataclass
class Command:
    line: str
    config: str  # train, eval or predict
    overrides: list[str] = field(default_factory=list)
    multirun: bool = False
    console_script: bool = True  # trainlab-NAME; False for python -m trainlab.NAME


def code_blocks(*languages: str) -> list[str]:
    return [body for language, body in CODE_BLOCK.findall(README) if language in languages]


def shell_lines() -> list[str]:
    """Each command of the README's bash blocks, continuation lines joined, comments dropped."""
    lines = []
    for block in code_blocks("bash", "sh", "shell", "console"):
        for line in block.replace("\\\n", " ").splitlines():
            line = line.strip().removeprefix("$ ")
            if line and not line.startswith("#"):
                lines.append(line)
    return lines


def words(line: str) -> list[str]:
    tokens = shlex.split(PLACEHOLDER.sub("X", line), comments=True)
    while tokens and re.fullmatch(r"[A-Z_][A-Z0-9_]*=.*", tokens[0]):  # VAR=value before the program
        tokens.pop(0)
    return tokens


def entry_point_command(line: str, tokens: list[str]) -> Command | None:
    """`trainlab-NAME args` or `python -m trainlab.NAME args` as a Command, or None for other programs.

    The entry point may follow a launcher (`srun`, `nohup`, `torchrun ...`): it is looked for in every word.
    """
    for index, token in enumerate(tokens):
        if match := ENTRY_POINT.search(token):
            command, args = Command(line, match.group(1)), tokens[index + 1 :]
            break
        if token == "-m" and index + 1 < len(tokens) and tokens[index + 1].startswith("trainlab."):
            name = tokens[index + 1].split(".")[1]
            command, args = Command(line, name, console_script=False), tokens[index + 2 :]
            break
    else:
        return None
    args = iter(args)
    for arg in args:
        if arg in ("-m", "--multirun"):
            command.multirun = True
        elif arg in CONFIG_NAME_FLAGS:
            command.config = next(args)
        elif arg in FLAGS_WITH_VALUE:
            next(args, None)
        elif not arg.startswith("-"):
            command.overrides.append(arg)
    return command


def readme_commands() -> tuple[list[Command], list[tuple[str, str, list[str]]]]:
    """(entry-point commands, make commands as (line, target, variables)) of every README code block."""
    commands, makes = [], []
    for line in shell_lines():
        for part in re.split(r"\s*&&\s*", line):
            tokens = words(part)
            if not tokens:
                continue
            if tokens[0] == "make":
                target = next((t for t in tokens[1:] if "=" not in t and not t.startswith("-")), "")
                makes.append((part, target, [t for t in tokens[1:] if "=" in t]))
            elif command := entry_point_command(part, tokens):
                commands.append(command)
    return commands, makes


def jobs(command: Command) -> list[list[str]]:
    """The override lists to compose: one for a single run; the first and last job of a sweep."""
    if not command.multirun:
        return [command.overrides]
    parsed = OverridesParser.create().parse_overrides(command.overrides)
    try:
        batches = BasicSweeper.split_arguments(parsed, max_batch_size=None)
    except Exception:  # a sweeper plugin's own syntax (e.g. interval()): compose what the basic sweeper can
        return [[o.input_line for o in parsed if not o.is_sweep_override()]]
    all_jobs = [job for batch in batches for job in batch]
    return [all_jobs[0], all_jobs[-1]] if len(all_jobs) > 1 else all_jobs


def example_files() -> dict[str, str]:
    """The worked example's files: code blocks whose first line is `# <path in the repository>`."""
    files = {}
    for body in code_blocks("python", "yaml"):
        first, _, rest = body.partition("\n")
        path = first.removeprefix("# ").strip()
        if first.startswith("# ") and path.startswith(("src/trainlab/", "configs/")) and " " not in path:
            files[path] = rest
    return files


@pytest.fixture(scope="module")
def configs_with_examples(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of configs/ with the README's example configs added; the repository is left as it is."""
    copy = tmp_path_factory.mktemp("readme") / "configs"
    shutil.copytree(CONFIG_DIR, copy)
    for path, text in example_files().items():
        if path.startswith("configs/"):
            (copy / path.removeprefix("configs/")).write_text(text)
    return copy


COMMANDS, MAKES = readme_commands()


def test_the_readme_shows_every_entry_point_and_the_set_up_commands() -> None:
    assert {command.config for command in COMMANDS} >= {"train", "eval", "predict"}
    assert {target for _, target, _ in MAKES} >= {"train", "test", "tensorboard", "rename", "lint", "format"}
    assert len(COMMANDS) > 20


@pytest.mark.parametrize("command", COMMANDS, ids=[command.line for command in COMMANDS])
def test_readme_command_composes(command: Command, configs_with_examples: Path, tmp_path: Path) -> None:
    if command.console_script:
        assert f'trainlab-{command.config} = "' in PYPROJECT, f"no console script trainlab-{command.config}"
    else:
        assert importlib.util.find_spec(f"trainlab.{command.config}"), f"no module trainlab.{command.config}"
    if not (configs_with_examples / f"{command.config}.yaml").is_file():
        return  # an entry point without a Hydra config (plain arguments): its console script exists, checked above
    for overrides in jobs(command):
        cfg = compose_config(command.config, overrides, tmp_path / "run", config_dir=configs_with_examples)
        assert cfg.task_name  # composed, with every interpolation of the run's identity resolvable


@pytest.mark.parametrize(("line", "target", "variables"), MAKES, ids=[line for line, _, _ in MAKES])
def test_readme_make_command_exists(
    line: str, target: str, variables: list[str], configs_with_examples: Path, tmp_path: Path
) -> None:
    assert re.search(rf"^{re.escape(target)}:", MAKEFILE, re.MULTILINE), f"`{line}`: no make target {target!r}"
    for variable in variables:
        name, _, value = variable.partition("=")
        assert re.search(rf"\$\({name}\)", MAKEFILE), f"`{line}`: the Makefile does not use {name}"
        if name == "ARGS" and target == "train":
            compose_config("train", shlex.split(value), tmp_path / "run", config_dir=configs_with_examples)


def load_example_module(path: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Import a README example file under its module name (src/trainlab/nets/x.py -> trainlab.nets.x), for this test."""
    module_name = path.removeprefix("src/").removesuffix(".py").replace("/", ".")
    module = importlib.util.module_from_spec(importlib.util.spec_from_loader(module_name, loader=None))
    exec(compile(example_files()[path], path, "exec"), module.__dict__)  # the README's own code, as a user pastes it
    monkeypatch.setitem(sys.modules, module_name, module)
    parent, _, leaf = module_name.rpartition(".")
    monkeypatch.setattr(importlib.import_module(parent), leaf, module, raising=False)


def test_worked_example_trains(configs_with_examples: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    python_files = [path for path in example_files() if path.endswith(".py")]
    assert sorted(python_files) == ["src/trainlab/data/rings.py", "src/trainlab/nets/resmlp.py"]
    for path in python_files:
        load_example_module(path, monkeypatch)
    overrides = [
        "experiment=rings_resmlp",
        "data.num_train=1200",
        "data.num_val=300",
        "data.num_test=300",
        "trainer.max_epochs=4",
        "logger=none",
        "callbacks=none",
    ]
    metrics = train(compose_config("train", overrides, tmp_path / "run", config_dir=configs_with_examples))
    assert metrics["val/acc"] > 0.6  # three rings, one per class: chance is 1/3
