"""Mistakes on the command line that Hydra refuses while composing the config, told as one trainlab line.

Hydra reports such a mistake itself, in many lines and with exit code 1, and its advice can be the wrong fix
(`+trainer.max_epoch=3` for a misspelt key). Here Hydra still finds the mistake and trainlab tells it: a single
run lets Hydra raise its error (trainlab/cli.py), so a good command costs nothing more; a multirun is composed
once beforehand with each sweep at its first value (`check_multirun`), because its jobs are composed only after
the sweep folder is written. A command line this module cannot read is left to Hydra, as before: it never
refuses a command that Hydra accepts.
"""

import difflib
import re
import shlex
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import yaml
from hydra import compose, initialize_config_dir
from hydra.core.config_loader import ConfigLoader
from hydra.core.global_hydra import GlobalHydra
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override
from hydra.errors import (
    CompactHydraException,
    ConfigCompositionException,
    MissingConfigException,
    OverrideParseException,
)
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from runkit.config.choices import check_chosen_options_exist
from runkit.config.compose import CONFIG_DIR
from runkit.config.errors import ConfigError, did_you_mean

# Hydra's flags that this check reads; any other flag (--help, --info, --config-path, ...) leaves it all to Hydra.
FLAGS_WITH_VALUE = {"--cfg": "cfg", "-c": "cfg", "--package": "package", "-p": "package", "-cn": "config_name"}
FLAGS_WITH_VALUE |= {"--config-name": "config_name", "--config-dir": "config_dir", "-cd": "config_dir"}
SWITCHES = {"--run": "run", "-r": "run", "--multirun": "multirun", "-m": "multirun", "--resolve": "resolve"}
KEY = re.compile(r"[~+]{0,2}[\w\-./@]+")  # what Hydra's grammar takes as an override's key


@dataclass(frozen=True)
class CommandLine:
    """What the check needs from a console script's arguments."""

    program: str  # trainlab-train, named in the advice
    config_name: str
    overrides: tuple[str, ...]
    config_dir: str | None = None
    multirun: bool = False
    job: tuple[str, ...] | None = None  # a multirun's job being checked: the overrides with each sweep at one value


def read_command_line(argv: Sequence[str], config_name: str) -> CommandLine | None:
    """The command line as Hydra's argument parser reads it, or None when it holds what the check leaves to Hydra.

    Raises a ConfigError for flags Hydra refuses together (-m with --cfg, --resolve without --cfg).
    """
    flags: dict[str, str | bool] = {}
    overrides: list[str] = []
    args, closed = list(argv), False
    while args:
        arg = args.pop(0)
        if not arg.startswith("-"):
            if closed:
                return None  # overrides on both sides of a flag: Hydra's argument parser refuses that itself
            overrides.append(arg)
            continue
        closed = bool(overrides)
        name, has_value, value = arg.partition("=")
        if name in FLAGS_WITH_VALUE and (has_value or (args and not args[0].startswith("-"))):
            flags[FLAGS_WITH_VALUE[name]] = value if has_value else args.pop(0)
        elif arg in SWITCHES:
            flags[SWITCHES[arg]] = True
        else:
            return None  # --help, --info, --config-path, an abbreviated flag, ...: Hydra's own business
    if sum(bool(flags.get(key)) for key in ("run", "multirun", "cfg")) > 1:
        raise ConfigError("use only one of -m (--multirun), -r (--run) and --cfg; --cfg shows a single run's config.")
    if flags.get("resolve") and not flags.get("cfg"):
        raise ConfigError("--resolve works only with --cfg, e.g. --cfg job --resolve.")
    config_dir = flags.get("config_dir")
    return CommandLine(
        program=f"trainlab-{config_name}",
        config_name=str(flags.get("config_name") or config_name),
        overrides=tuple(overrides),
        config_dir=str(Path(str(config_dir)).resolve()) if config_dir else None,
        multirun=bool(flags.get("multirun")),
    )


def compose_command(command: CommandLine, overrides: Sequence[str]) -> DictConfig:
    """The config as Hydra composes it for a single run with these overrides, the hydra section included."""
    search_path = [f"hydra.searchpath=[file://{command.config_dir}]"] if command.config_dir else []
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        return compose(command.config_name, overrides=[*overrides, *search_path], return_hydra_config=True)


def check_multirun(command: CommandLine) -> None:
    """Compose a multirun's first job (each sweep at its first value) and raise its mistake as a ConfigError.

    Every option a group sweep names must exist too (`model=cnn,cnnn`). A sweep that cannot be enumerated
    (Optuna's `interval(...)`) is left out of the check; Hydra reads it as before.
    """
    if command.config_dir and any(item.lstrip("+~").startswith("hydra.searchpath") for item in command.overrides):
        return  # two ways of extending the search path at once: only Hydra knows their order
    try:
        jobs = sweep_jobs(command)
    except OverrideParseException as error:
        raise ConfigError(unreadable_override(error.override, error.message)) from None
    except ConfigError:
        raise
    except Exception:  # a sweep this check cannot expand: Hydra decides, as before
        return
    for job in jobs:
        try:
            composed = compose_command(command, job)
        except Exception as error:
            message = explain(error, replace(command, job=tuple(job)))
            if message is None or (command.config_dir and is_primary_config_missing(error)):
                return  # not a mistake this check can name for sure: Hydra decides, as before
            raise ConfigError(message) from None
        check_chosen_options_exist(composed.hydra)  # an optional group's missing option composes as nothing


def sweep_jobs(command: CommandLine) -> list[list[str]]:
    """The overrides of a multirun's first job, then of one more job for each option a group sweep names that
    its group lacks (an optional group takes any option, so only composing can tell)."""
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        loader = GlobalHydra.instance().config_loader()
        parsed = OverridesParser.create(config_loader=loader).parse_overrides(list(command.overrides))
        choices = [choice for choice in (override_choices(override, loader) for override in parsed) if choice]
    first = [choice[0] for choice in choices]
    others = [(position, item) for position, choice in enumerate(choices) for item in choice[1:]]
    return [first, *[[*first[:position], item, *first[position + 1 :]] for position, item in others]]


def override_choices(override: Override, loader: ConfigLoader) -> list[str]:
    """What to compose for one override: itself; for a sweep, its first value and any option its group lacks;
    nothing for a sweep that cannot be enumerated."""
    if not override.is_sweep_override():
        return [str(override.input_line)]
    if override.is_hydra_override():
        raise ConfigError(f"{override.input_line}: a multirun cannot sweep over Hydra's own settings; give one value.")
    if not override.is_discrete_sweep():
        return []
    key, values = override.get_key_element(), override.sweep_string_iterator()
    if not override.is_choice_sweep():
        return [f"{key}={next(values)}"]
    values = list(values)
    options = loader.get_group_options(override.key_or_group)
    unknown = [value for value in values[1:] if options and value not in options]
    return [f"{key}={value}" for value in values[:1] + unknown]


def explain(error: BaseException, command: CommandLine) -> str | None:
    """One sentence for a mistake Hydra refused while reading the command line or composing the config; None for
    any other error (a bug, a broken install), which keeps Hydra's own report."""
    yaml_error = find_cause(error, yaml.MarkedYAMLError)
    if yaml_error is not None and yaml_error.problem_mark is not None:
        mark, context = yaml_error.problem_mark, f" ({yaml_error.context})" if yaml_error.context else ""
        return (
            f"{mark.name}:{mark.line + 1}:{mark.column + 1}: this config file is not valid YAML: "
            f"{yaml_error.problem}{context}; fix the file there."
        )
    if isinstance(error, OverrideParseException):
        return unreadable_override(error.override, error.message)
    if isinstance(error, MissingConfigException):
        return missing_config(error, command)
    if isinstance(error, ConfigCompositionException):
        return refused_override(error, command)
    if isinstance(error, CompactHydraException):
        return one_line(str(error))
    if isinstance(error, OmegaConfBaseException):
        return f"{error.full_key}: {first_line(error)}" if error.full_key else first_line(error)
    return None


def unreadable_override(override: str, reason: str) -> str:
    """An override Hydra's grammar refuses: most often a value with spaces, brackets or quotes meant as text."""
    key, has_value, value = override.partition("=")
    if not has_value or not KEY.fullmatch(key):
        return f"{override!r} is not an override: write key=value, e.g. trainer.max_epochs=3."
    quoted = shell_quoted("{}='{}'".format(key, value.replace("'", "\\'")))
    return (
        f"the override {override} could not be parsed ({first_line(reason)}); check its brackets and quotes, "
        f"and quote a value meant as text, e.g. {quoted}."
    )


def missing_config(error: MissingConfigException, command: CommandLine) -> str:
    """A group option (model=cnnn) or a primary config (--config-name) that no config folder holds."""
    if is_primary_config_missing(error):
        folders = [Path(CONFIG_DIR), *([Path(command.config_dir)] if command.config_dir else [])]
        names = sorted({path.stem for folder in folders for path in folder.glob("[!_]*.yaml")})
        return (
            f"--config-name={command.config_name} is not a config of {command.program}; the configs are: "
            f"{', '.join(names)}{did_you_mean(command.config_name, names)}."
        )
    group, _, option = str(error.missing_cfg_file).rpartition("/")
    options = list(error.options or [])
    pairs = [item.lstrip("+").partition("=")[::2] for item in command.overrides]
    written = any(key == group and option in re.split(r"[\s,()]+", value) for key, value in pairs)  # or in a sweep
    asked_by = "" if written else " (a config file asks for it)"
    if not options:
        return one_line(str(error))
    return (
        f"{group}={option} is not an option of {group}{asked_by}; the options are: {', '.join(options)}"
        f"{did_you_mean(option, options)}."
    )


def refused_override(error: ConfigCompositionException, command: CommandLine) -> str:
    """An override that names no key, adds a key or a choice that exists, or sweeps without -m."""
    text, cause = str(error), error.__cause__
    if (found := re.match(r"Could not override '(.+?)'\.\n", text)) and isinstance(cause, KeyError | AttributeError):
        return unknown_key(command, found[1], str(getattr(cause, "full_key", found[1])))
    if found := re.match(r"Could not delete from config. '(.+?)' does not exist", text):
        return unknown_key(command, found[1], found[1])
    if found := re.match(r"Could not override '(.+?)'. No match in the defaults list", text):
        written = find_override(command, found[1])
        return f"{command.config_name}.yaml has no {found[1]} in its defaults for {written} to replace; +{written} adds it."
    if (found := re.search(r"An item is already at '(.+?)'", text)) or (
        (found := re.match(r"Multiple values for (.+?)\.", text)) and f"+{found[1]}=" in " ".join(command.overrides)
    ):
        written = find_override(command, found[1]).lstrip("+")
        return f"{found[1]} is already in the config, so it cannot be added with +; set it with {written}."
    if found := re.match(r"Ambiguous value for argument '(.+?)'", text):
        key, _, value = found[1].partition("=")
        return (
            f"{found[1]} is a sweep over several values: run it with -m (--multirun); for a single value that is a "
            f"list write {key}=[{value}], for text {shell_quoted(f'{key}={value!r}')}."
        )
    if found := re.match(r"Sweep parameters '(.+?)' requires --multirun", text):
        return f"{found[1]} is a sweep: run it with -m (--multirun)."
    if (found := re.match(r"Error merging override (.+)", text)) and cause is not None:
        return f"{found[1]} was refused: {first_line(cause)}."
    return one_line(text)


def unknown_key(command: CommandLine, key: str, missing: str) -> str:
    """`trainer.max_epoch=3`: the nearest keys at that level of the config, or how to add one or list them."""
    written = find_override(command, key)
    prefix = written[: len(written) - len(written.lstrip("+~"))]
    rest = written[len(prefix) + len(missing) :]  # what follows the misspelt part: deeper keys, =value
    parent_path, _, name = missing.rpartition(".")
    config = config_without(command, key)
    section = OmegaConf.select(config, parent_path) if config is not None and parent_path else config
    if section is not None and not isinstance(section, DictConfig):
        return f"{missing} is not a key of the config: {parent_path} is a single value; set it as {parent_path}=..."
    keys = [str(k) for k in section or {} if not rest.startswith(".") or isinstance(section[k], DictConfig)]
    close = [k for k in keys if name in (initials(k), k) or initials(name) == k]
    close += difflib.get_close_matches(name, keys, n=2, cutoff=0.75)
    if close:
        guesses = [f"{prefix}{parent_path}{'.' if parent_path else ''}{match}{rest}" for match in dict.fromkeys(close)]
        return f"{missing} is not a key of the config; did you mean {' or '.join(guesses[:2])}?"
    listing = f"{command.program} --cfg {'hydra' if key.startswith('hydra.') else 'job'} lists the keys"
    if prefix == "~" or key.startswith("hydra."):
        return f"{missing} is not a key of the config; {listing}."
    return f"{missing} is not a key of the config; to add it, write +{written.lstrip('+')}, or {listing}."


def config_without(command: CommandLine, key: str) -> DictConfig | None:
    """The config composed without the overrides of `key` (else with the group choices alone), to look up the
    keys it could mean; None when it cannot be composed."""
    others = [item for item in command.job or command.overrides if item.partition("=")[0].lstrip("+~") != key]
    for overrides in (others, [item for item in others if re.fullmatch(r"[\w/]+=[\w.\-]+", item)]):
        try:
            return compose_command(command, overrides)
        except Exception:  # another mistake among them: try with fewer
            continue
    return None


def find_override(command: CommandLine, key: str) -> str:
    """The override as written whose key is `key`, or the key alone."""
    return next((item for item in command.overrides if item.partition("=")[0].lstrip("+~") == key), key)


def initials(name: str) -> str:
    """learning_rate -> lr: a key often has a short name that no spelling distance finds."""
    parts = [part for part in name.split("_") if part]
    return "".join(part[0] for part in parts) if len(parts) > 1 else ""


def is_primary_config_missing(error: BaseException) -> bool:
    return isinstance(error, MissingConfigException) and str(error).startswith("Cannot find primary config")


def find_cause(error: BaseException | None, kind: type[BaseException]) -> BaseException | None:
    """The first error of this kind among an error and its causes (Hydra may wrap what the yaml reader raised)."""
    while error is not None and not isinstance(error, kind):
        error = error.__cause__
    return error


def first_line(error: BaseException | str) -> str:
    return str(error).strip().splitlines()[0].rstrip(".")


def one_line(text: str) -> str:
    """Hydra's message on one line, without the search path and the links that follow it."""
    text = re.split(r"\n(?:Config search path|Search path|See https)", text)[0]
    return " ".join(line.strip() for line in text.splitlines() if line.strip()).rstrip(".")


def shell_quoted(override: str) -> str:
    """An override with a quoted value as typed into a shell: inside double quotes where that is safe."""
    return shlex.quote(override) if re.search(r'["$`\\!]', override) else f'"{override}"'
