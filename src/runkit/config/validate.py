"""Checks the composed config against the schema before anything is built or loaded.

Four kinds of mistakes, each reported as one ConfigError sentence: a mandatory value left at
`???`, a value of the wrong type, a value out of range (the schemas in `config/schema.py`), and a
key that the configured class does not take (a misspelling, found from the class's signature; the
error names the config file or the command line that set it).
The config is read as plain containers without resolving interpolations, so a value is named as
the user wrote it.
"""

import collections.abc
import contextlib
import difflib
import importlib.util
import inspect
import os
import re
import types
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from hydra import initialize_config_dir
from hydra.core.config_store import ConfigStore
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from runkit.compat import composed_files
from runkit.config.choices import check_chosen_options_exist, check_search_is_a_multirun
from runkit.config.errors import ConfigError, missing_class_error, uneven_batch_error
from runkit.config.paths import check_folder_settings
from runkit.config.schema import SCHEMA_GROUP, register_schemas
from runkit.optional import is_installed, where_to_find

# Keys that Hydra's instantiate reads itself rather than passing to the class.
INSTANTIATE_KEYS = {"_target_", "_partial_", "_recursive_", "_convert_", "_args_"}

MISSING = "???"
# Loggers whose library is an optional extra of trainlab: class name -> package.
OPTIONAL_LOGGER_PACKAGES = {"MLFlowLogger": "mlflow", "WandbLogger": "wandb"}
# What each simple type accepts from a config file (bool is an int to Python, never to a config).
SCALAR_CHECKS = {
    int: lambda value: isinstance(value, int) and not isinstance(value, bool),
    float: lambda value: isinstance(value, int | float) and not isinstance(value, bool),
    bool: lambda value: isinstance(value, bool),
    str: lambda value: isinstance(value, str),
}
TYPE_NAMES = {"int": "an integer", "float": "a number", "bool": "true or false", "str": "a string"}


def validate_config(cfg: DictConfig) -> None:
    """Raise a ConfigError for the first mistake in cfg; return quietly when there is none."""
    check_chosen_options_exist()
    check_search_is_a_multirun()
    tree = OmegaConf.to_container(cfg, resolve=False)
    check_no_missing_values(tree)
    check_logger_packages(tree.get("logger") or {})
    for path, schema in schemas():
        section = OmegaConf.select(cfg, path) if path else cfg
        if isinstance(section, DictConfig):
            check_against_schema(path, section, schema)
    for path, node in targeted_nodes(tree):
        check_keys_are_parameters(path, node)
    check_batch_divides_across_processes(cfg)
    check_folder_settings(cfg)


def missing_keys(node: dict, path: str = "") -> Iterator[str]:
    """Keys left at `???` (OmegaConf.missing_keys would resolve interpolations first)."""
    for key, value in node.items():
        full_key = f"{path}.{key}" if path else str(key)
        if value == MISSING:
            yield full_key
        elif isinstance(value, dict):
            yield from missing_keys(value, full_key)


def check_no_missing_values(tree: dict) -> None:
    for key in missing_keys(tree):
        raise ConfigError(
            f"{key}=??? has no value but the run needs one; set it on the command line, e.g. {key}=<value>."
        )


def check_logger_packages(loggers: dict) -> None:
    """A logger whose library is not installed is named, with the extra that installs it, before anything is built."""
    for name, entry in loggers.items():
        target = str((entry or {}).get("_target_", "")) if isinstance(entry, dict) else ""
        package = OPTIONAL_LOGGER_PACKAGES.get(target.rpartition(".")[2])
        if package is not None and not is_installed(package):
            raise ConfigError(f"logger.{name} needs {where_to_find(package)}, or choose another logger=.")


def schemas() -> Iterator[tuple[str, DictConfig]]:
    """(config path, schema) for every schema in the ConfigStore's `schema` group."""
    store = ConfigStore.instance()
    if SCHEMA_GROUP not in store.repo:
        register_schemas()
    loaded = [store.load(f"{SCHEMA_GROUP}/{name}").node for name in store.list(SCHEMA_GROUP)]
    # Outer sections first, so that a top-level value (seed=abc) is named before its copies (data.seed).
    for schema in sorted(loaded, key=lambda node: len(OmegaConf.get_type(node).path)):
        yield OmegaConf.get_type(schema).path, schema


def check_against_schema(path: str, section: DictConfig, schema: DictConfig) -> None:
    """Types by merging the section's known keys into the schema, ranges by building the dataclass."""
    known = {key: section[key] for key in schema if key in section}
    prefix = f"{path}." if path else ""
    try:
        typed = OmegaConf.merge(schema, known)
    except OmegaConfBaseException as error:
        name = re.split(r"[.\[]", str(error.full_key))[0]  # 'input_shape[1]' -> 'input_shape'
        value = known[name]
        expected = type_name(schema, name)
        raise ConfigError(
            f"{prefix}{name}={value} has the wrong type: expected {expected}; set {prefix}{name} to {expected}."
        ) from None
    OmegaConf.to_object(typed)  # runs the schema's __post_init__ range checks


def type_name(schema: DictConfig, key: str) -> str:
    """'an integer', 'a list of integers', ... for a field of the schema."""
    hint = typing.get_type_hints(OmegaConf.get_type(schema)).get(key)
    kind = next((arg for arg in typing.get_args(hint) if arg is not type(None)), hint)
    if typing.get_origin(kind) is list:
        return "a list of integers"
    return TYPE_NAMES.get(getattr(kind, "__name__", ""), "a value of the declared type")


def targeted_nodes(node: Any, path: str = "") -> Iterator[tuple[str, dict]]:
    """Every section with a `_target_`, with its dotted path, at any depth."""
    if not isinstance(node, dict):
        return
    if "_target_" in node:
        yield path, node
    for key, child in node.items():
        yield from targeted_nodes(child, f"{path}.{key}" if path else str(key))


def check_keys_are_parameters(path: str, node: dict) -> None:
    """Each key must be a parameter of the class the section builds, and its value fit the parameter's type."""
    target = str(node["_target_"])
    if "." in target and not target.startswith("${"):
        try:
            locate(target)
        except (ImportError, AttributeError):
            raise missing_class_error(path, target) from None
    annotations, takes_any_keyword = constructor_parameters(target)
    for key, value in node.items():
        if key in INSTANTIATE_KEYS:
            continue
        if key not in annotations and not takes_any_keyword:
            close = difflib.get_close_matches(str(key), sorted(annotations), n=1)
            fix = f"did you mean {path}.{close[0]}?" if close else "remove it or check its spelling."
            raise ConfigError(f"{path}.{key}={value} is not a setting of {target}{set_where(f'{path}.{key}')}; {fix}")
        expected = type_mismatch(annotations.get(key, Any), value)
        if expected is not None:
            raise ConfigError(
                f"{path}.{key}={value} has the wrong type{set_where(f'{path}.{key}')}: expected {expected}; "
                f"set {path}.{key} to {expected}."
            )


# --- where a setting came from ---------------------------------------------------------------------------------
def set_where(key: str) -> str:
    """' (set on the command line)' or ' (set in configs/experiment/fast.yaml)': where the dotted `key` was set, for
    its error; empty when that cannot be told. Looking never hides the error it is for."""
    if not HydraConfig.initialized():
        return ""
    hydra_cfg = HydraConfig.get()
    overrides = [str(override) for override in hydra_cfg.overrides.task]
    if any(override.lstrip("~+").partition("=")[0] == key for override in overrides):
        return " (set on the command line)"  # applied after every file, so it wins over them
    try:
        files = [path for path, package, config in composed_configs(hydra_cfg, overrides) if sets(config, package, key)]
    except Exception:  # a config Hydra composed a moment ago and now cannot read: say nothing more
        return ""
    return f" (set in {shown_path(files[-1])})" if files else ""  # the last file to set a key is the one that counts


def composed_configs(hydra_cfg: DictConfig, overrides: list[str]) -> Iterator[tuple[Path, str, dict]]:
    """(file, package, its content) of every config file the run was composed from, in Hydra's order. Hydra's
    composed config keeps no origins, so the files are read again, as Hydra read them."""
    with config_loader(hydra_cfg) as loader:
        sources = [source for source in loader.get_sources() if source.scheme() == "file"]
        for config_path, package in composed_files(loader, hydra_cfg.job.config_name, overrides):
            source = next((source for source in sources if source.is_config(config_path)), None)
            if source is not None:
                config = OmegaConf.to_container(source.load_config(config_path).config, resolve=False)
                yield Path(source.path) / f"{config_path}.yaml", package, config


@contextlib.contextmanager
def config_loader(hydra_cfg: DictConfig) -> Iterator[Any]:
    """Hydra's config loader: the running command's, or (for a config composed in-process, once Hydra let go)
    one over the run's primary config folder."""
    if GlobalHydra.instance().is_initialized():
        yield GlobalHydra.instance().config_loader()
        return
    (primary,) = [source.path for source in hydra_cfg.runtime.config_sources if source.provider == "main"]
    with initialize_config_dir(config_dir=str(primary), version_base="1.3"):
        yield GlobalHydra.instance().config_loader()


def sets(config: dict, package: str, key: str) -> bool:
    """Whether a config file composed into `package` ('' for the top level) sets the dotted `key`."""
    if package and not key.startswith(f"{package}."):
        return False
    node: Any = {name: value for name, value in config.items() if name != "defaults"}
    for part in key.removeprefix(f"{package}." if package else "").split("."):
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return True


def shown_path(path: Path) -> str:
    """A path as the user would type it: relative to the working folder when it is inside it."""
    relative = os.path.relpath(path)
    return path.as_posix() if relative.startswith("..") else Path(relative).as_posix()


def locate(target: str) -> Any:
    """The object a dotted `_target_` names: the longest importable module, then attributes. Unlike Hydra's
    get_method it logs nothing, so a misspelt class is reported once, as one line."""
    parts = target.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for name in parts[cut:]:
            obj = getattr(obj, name)
        return obj
    raise ImportError(target)


def constructors(obj: Any) -> list[Any]:
    """A class's __init__ methods from the class up to object (a function is its own constructor)."""
    if not inspect.isclass(obj):
        return [obj]
    return [klass.__dict__["__init__"] for klass in obj.__mro__ if "__init__" in klass.__dict__]


def constructor_parameters(target: str) -> tuple[dict[str, Any], bool]:
    """The keyword arguments `target` takes with their type annotations, following **kwargs up the class
    hierarchy, and whether it takes any keyword at all (then unknown keys cannot be judged)."""
    try:
        obj = locate(target) if "." in target else None
    except Exception:  # a target that cannot be imported was reported by check_keys_are_parameters
        return {}, True
    if obj is None:
        return {}, True
    annotations: dict[str, Any] = {}
    for function in constructors(obj):
        try:
            parameters = inspect.signature(function).parameters.values()
        except (TypeError, ValueError):
            return annotations, True
        try:
            hints = typing.get_type_hints(function)
        except Exception:  # annotations that do not resolve: the names still count, the types are not checked
            hints = {}
        for p in parameters:
            if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.name != "self":
                annotations.setdefault(p.name, hints.get(p.name, Any))
        if not any(p.kind is p.VAR_KEYWORD for p in parameters):
            return annotations, False
    return annotations, True


def type_mismatch(annotation: Any, value: Any) -> str | None:
    """What the annotation expects, when a value written in a config cannot be one; None when it fits or
    when the annotation says too little to judge (a class, a callable, Any, an interpolation not resolved)."""
    if isinstance(value, dict) or (isinstance(value, str) and value.startswith("${")) or value == MISSING:
        return None
    if annotation is Any or annotation is inspect.Parameter.empty:
        return None
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        # Literal alternatives read as one list of choices: "one of 16, 32, 16-mixed, bf16-mixed".
        choices = [
            choice for arg in args if typing.get_origin(arg) is typing.Literal for choice in typing.get_args(arg)
        ]
        others = [arg for arg in args if arg is not type(None) and typing.get_origin(arg) is not typing.Literal]
        expected = [
            type_mismatch(arg, value) for arg in [*others, *([typing.Literal[tuple(choices)]] if choices else [])]
        ]
        return None if None in expected else " or ".join(dict.fromkeys(expected))
    if origin is typing.Literal:
        return None if value in args else "one of " + ", ".join(dict.fromkeys(str(arg) for arg in args))
    if origin in (list, tuple, collections.abc.Sequence):
        if not isinstance(value, list):
            return "a list" if not args else f"a list of {plural(args[0])}"
        items = [type_mismatch(args[0], item) for item in value] if args else []
        return f"a list of {plural(args[0])}" if any(items) else None
    if annotation in SCALAR_CHECKS:
        return None if value is None or SCALAR_CHECKS[annotation](value) else TYPE_NAMES[annotation.__name__]
    return None


def plural(kind: Any) -> str:
    return {int: "integers", float: "numbers", str: "strings", bool: "true/false values"}.get(kind, "values")


def check_batch_divides_across_processes(cfg: DictConfig) -> None:
    """data.batch_size is the global batch; under DDP each process takes an equal share of it."""
    trainer, data = cfg.get("trainer") or {}, cfg.get("data") or {}
    devices, nodes, batch_size = trainer.get("devices"), trainer.get("num_nodes") or 1, data.get("batch_size")
    if "ddp" not in str(trainer.get("strategy", "")) or not isinstance(devices, int) or not isinstance(batch_size, int):
        return  # with devices=auto or a list, the datamodule checks once Lightning knows the world size
    processes = devices * nodes
    if batch_size % processes:
        raise uneven_batch_error(batch_size, processes, f" (trainer.devices={devices} x trainer.num_nodes={nodes})")
