"""The README and docs/ cannot drift from the code: every command in their code blocks composes, every make
target exists, and the README's worked examples (models, datamodules and experiments) train as written."""

import importlib
import importlib.util
import itertools
import re
import shlex
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import torch
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.utils import instantiate

from runkit.config import CONFIG_DIR
from runkit.training import train
from tests.runkit.helpers.config import compose_config
from tests.runkit.helpers.examples import PAGES, example_files, load_example_module
from tests.runkit.helpers.process import ROOT

README = PAGES["README.md"]
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
    line: str  # "<page>: <command>"
    config: str  # train, eval or predict
    overrides: list[str] = field(default_factory=list)
    multirun: bool = False
    console_script: bool = True  # trainlab-NAME; False for python -m trainlab.NAME
    in_extras_venv: bool = False  # .venv-extras/bin/...: composed where that venv's packages are


def code_blocks(text: str, *languages: str) -> list[str]:
    return [body for language, body in CODE_BLOCK.findall(text) if language in languages]


def shell_lines(text: str) -> list[str]:
    """Each command of a page's bash blocks, continuation lines joined, comments dropped."""
    lines = []
    for block in code_blocks(text, "bash", "sh", "shell", "console"):
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
    command.in_extras_venv = tokens[index].startswith(".venv-extras/")
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


def page_commands() -> tuple[list[Command], list[tuple[str, str, list[str]]]]:
    """(entry-point commands, make commands as (line, target, variables)) of every code block of every page.

    Each line is prefixed with its page ("docs/experiments.md: trainlab-train ..."), so a failure names where it is.
    """
    commands, makes = [], []
    for page, text in PAGES.items():
        for line in shell_lines(text):
            for part in re.split(r"\s*&&\s*", line):
                tokens = words(part)
                if not tokens:
                    continue
                if tokens[0] == "make":
                    target = next((t for t in tokens[1:] if "=" not in t and not t.startswith("-")), "")
                    makes.append((f"{page}: {part}", target, [t for t in tokens[1:] if "=" in t]))
                elif command := entry_point_command(f"{page}: {part}", tokens):
                    commands.append(command)
    return commands, makes


def jobs(command: Command) -> list[list[str]]:
    """The override lists to compose: one for a single run; the first and last job of a sweep.

    A sweep is expanded as Hydra's basic sweeper does it, through the override parser's public API: every
    discrete sweep (`a=1,2`, `range(3)`, `choice(...)`) gives one value per job, the cartesian product of
    them the jobs, and a key given twice keeps its last value.
    """
    if not command.multirun:
        return [command.overrides]
    parsed = OverridesParser.create().parse_overrides(command.overrides)
    if any(o.is_sweep_override() and not o.is_discrete_sweep() for o in parsed):
        # a sweeper plugin's own syntax (e.g. interval()): compose what the basic sweeper can
        return [[o.input_line for o in parsed if not o.is_sweep_override()]]
    choices: dict[str, list[str]] = {}
    for override in parsed:
        key = override.get_key_element()
        if override.is_sweep_override():
            choices[key] = [f"{key}={value}" for value in override.sweep_string_iterator()]
        else:
            choices[key] = [f"{key}={override.get_value_element_as_str()}"]
    all_jobs = [list(job) for job in itertools.product(*choices.values())]
    return [all_jobs[0], all_jobs[-1]] if len(all_jobs) > 1 else all_jobs


# What a newcomer reads first, in this order; the rest is in docs/, one link away.
README_SECTIONS = ["Quick start", "What you see", "Everyday commands", "Making it yours", "Layout", "Tests", "More"]
README_MAX_LINES = 200  # a page read top to bottom in five minutes
README_MAX_LINE_LENGTH = 100


def test_the_readme_is_short_and_links_every_page_of_docs() -> None:
    sections = re.findall(r"^## (.+)$", README, re.MULTILINE)
    assert sections == README_SECTIONS
    assert len(README.splitlines()) <= README_MAX_LINES
    long_lines = [line for line in README.splitlines() if len(line) > README_MAX_LINE_LENGTH]
    assert not long_lines
    pages = {path for path in PAGES if path.startswith("docs/")}
    linked = {f"docs/{name}" for name in re.findall(r"\]\(docs/([\w-]+\.md)\)", README)}
    assert linked == pages


def test_a_copied_example_config_keeps_its_package_directive_first() -> None:
    """Hydra reads `# @package _global_` only as a file's first line: a copied block must start with it."""
    configs = {path: text for path, text in example_files().items() if path.endswith(".yaml")}
    assert len(configs) == 12
    assert not any(text.startswith(f"# {path}") for path, text in configs.items())  # the path is outside the block
    experiments = [
        text for path, text in configs.items() if path.startswith(("configs/experiment/", "configs/hparams_search/"))
    ]
    assert experiments and all(text.startswith("# @package _global_\n") for text in experiments)


@pytest.fixture(scope="module")
def configs_with_examples(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of configs/ with the worked examples' configs added; the repository is left as it is."""
    copy = tmp_path_factory.mktemp("readme") / "configs"
    shutil.copytree(CONFIG_DIR, copy)
    for path, text in example_files().items():
        if path.startswith("configs/"):
            (copy / path.removeprefix("configs/")).write_text(text)
    return copy


COMMANDS, MAKES = page_commands()


def test_the_readme_shows_every_entry_point_and_the_set_up_commands() -> None:
    readme_commands = [command for command in COMMANDS if command.line.startswith("README.md: ")]
    readme_targets = {target for line, target, _ in MAKES if line.startswith("README.md: ")}
    assert {command.config for command in readme_commands} >= {"train", "eval", "predict"}
    assert readme_targets >= {"train", "test", "tensorboard", "rename", "lint", "format"}
    assert "make train" in README and "make test" in README
    assert len(COMMANDS) > 20


@pytest.mark.usefixtures("example_modules")  # the worked examples' commands name the README's own classes
@pytest.mark.parametrize(
    "command",
    [pytest.param(command, marks=pytest.mark.extras) if command.in_extras_venv else command for command in COMMANDS],
    ids=[command.line for command in COMMANDS],
)
def test_page_command_composes(command: Command, configs_with_examples: Path, tmp_path: Path) -> None:
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
def test_page_make_command_exists(
    line: str, target: str, variables: list[str], configs_with_examples: Path, tmp_path: Path
) -> None:
    assert re.search(rf"^{re.escape(target)}:", MAKEFILE, re.MULTILINE), f"`{line}`: no make target {target!r}"
    for variable in variables:
        name, _, value = variable.partition("=")
        assert re.search(rf"\$\({name}\)", MAKEFILE), f"`{line}`: the Makefile does not use {name}"
        if name == "ARGS" and target == "train":
            compose_config("train", shlex.split(value), tmp_path / "run", config_dir=configs_with_examples)


@pytest.fixture
def example_modules(monkeypatch: pytest.MonkeyPatch) -> None:
    """The README's example Python files, importable under their module names for one test."""
    python_files = [path for path in example_files() if path.endswith(".py")]
    assert sorted(python_files) == [
        "src/trainlab/data/npy_datamodule.py",
        "src/trainlab/data/rings.py",
        "src/trainlab/data/sine.py",
        "src/trainlab/models/lit_classifier.py",
        "src/trainlab/nets/resmlp.py",
    ]
    for path in python_files:
        load_example_module(path, monkeypatch)


@pytest.mark.usefixtures("example_modules")
def test_worked_example_trains(configs_with_examples: Path, tmp_path: Path) -> None:
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


@pytest.mark.usefixtures("example_modules")
def test_regression_worked_example_trains(configs_with_examples: Path, tmp_path: Path) -> None:
    overrides = ["experiment=sine_mlp", "trainer.max_epochs=10", "logger=none", "callbacks=none"]
    cfg = compose_config("train", overrides, tmp_path / "run", config_dir=configs_with_examples)
    datamodule = instantiate(cfg.data)
    assert datamodule.task == "regression"
    datamodule.setup("fit")
    train_targets = torch.cat([targets for _, targets in datamodule.train_dataloader()])
    val_targets = torch.cat([targets for _, targets in datamodule.val_dataloader()])
    assert train_targets.dtype.is_floating_point and train_targets.shape == (len(train_targets), 1)
    # What predicting the training targets' mean for every sample scores: the bar a model has to clear.
    mean_prediction_mae = (val_targets - train_targets.mean()).abs().mean().item()
    metrics = train(cfg)
    assert metrics["val/mae"] < 0.5 * mean_prediction_mae, (metrics["val/mae"], mean_prediction_mae)
    assert torch.isfinite(torch.tensor(metrics["test/mae"]))


def test_the_config_groups_table_names_every_option_and_only_those() -> None:
    """The table of config groups is what a user picks from: every option on disk, and nothing else."""
    section = PAGES["docs/configs.md"].split("## Config groups", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| `([\w/]+)` \| (.+) \|$", section, re.MULTILINE)
    launchers = {"basic", "joblib", "submitit_local", "submitit_slurm"}  # hydra/launcher options of installed plugins
    assert rows
    for group, cell in rows:
        listed = {name for name in re.findall(r"`([^`]+)`", re.sub(r"\([^()]*\)", "", cell)) if name.isidentifier()}
        on_disk = {path.stem for path in (Path(CONFIG_DIR) / group).glob("*.yaml")}
        assert listed == on_disk | (launchers if group == "hydra/launcher" else set()), group
