"""Checks the composed config against the schema before anything is built or loaded.

Four kinds of mistakes, each reported as one ConfigError sentence: a mandatory value left at
`???`, a value of the wrong type, a value out of range (the schemas in `config/schema.py`), and a
key that the configured class does not take (a misspelling, found from the class's signature).
The config is read as plain containers without resolving interpolations, so a value is named as
the user wrote it.
"""

import difflib
import inspect
import re
import typing
from collections.abc import Iterator
from typing import Any

from hydra.core.config_store import ConfigStore
from hydra.utils import get_method
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from trainlab.config.errors import ConfigError, uneven_batch_error
from trainlab.config.schema import SCHEMA_GROUP, register_schemas

# Keys that Hydra's instantiate reads itself rather than passing to the class.
INSTANTIATE_KEYS = {"_target_", "_partial_", "_recursive_", "_convert_", "_args_"}

MISSING = "???"
TYPE_NAMES = {"int": "an integer", "float": "a number", "bool": "true or false", "str": "a string"}


def validate_config(cfg: DictConfig) -> None:
    """Raise a ConfigError for the first mistake in cfg; return quietly when there is none."""
    tree = OmegaConf.to_container(cfg, resolve=False)
    check_no_missing_values(tree)
    for path, schema in schemas():
        section = OmegaConf.select(cfg, path) if path else cfg
        if isinstance(section, DictConfig):
            check_against_schema(path, section, schema)
    for path, node in targeted_nodes(tree):
        check_keys_are_parameters(path, node)
    check_batch_divides_across_processes(cfg)


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
    target = str(node["_target_"])
    accepted = accepted_parameters(target)
    if accepted is None:  # the class takes any keyword
        return
    for key, value in node.items():
        if key in INSTANTIATE_KEYS or key in accepted:
            continue
        close = difflib.get_close_matches(str(key), sorted(accepted), n=1)
        fix = f"did you mean {path}.{close[0]}?" if close else "remove it or check its spelling."
        raise ConfigError(f"{path}.{key}={value} is not a setting of {target}; {fix}")


def constructors(obj: Any) -> list[Any]:
    """A class's __init__ methods from the class up to object (a function is its own constructor)."""
    if not inspect.isclass(obj):
        return [obj]
    return [klass.__dict__["__init__"] for klass in obj.__mro__ if "__init__" in klass.__dict__]


def accepted_parameters(target: str) -> set[str] | None:
    """The keyword arguments `target` takes, following **kwargs up the class hierarchy; None for any."""
    try:
        obj = get_method(target) if "." in target else None
    except Exception:  # an import error is reported by instantiate, with its own message
        return None
    if obj is None:
        return None
    names: set[str] = set()
    for function in constructors(obj):
        try:
            parameters = inspect.signature(function).parameters.values()
        except (TypeError, ValueError):
            return None
        names |= {p.name for p in parameters if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
        if not any(p.kind is p.VAR_KEYWORD for p in parameters):
            return names - {"self"}
    return None


def check_batch_divides_across_processes(cfg: DictConfig) -> None:
    """data.batch_size is the global batch; under DDP each process takes an equal share of it."""
    trainer, data = cfg.get("trainer") or {}, cfg.get("data") or {}
    devices, nodes, batch_size = trainer.get("devices"), trainer.get("num_nodes") or 1, data.get("batch_size")
    if "ddp" not in str(trainer.get("strategy", "")) or not isinstance(devices, int) or not isinstance(batch_size, int):
        return  # with devices=auto or a list, the datamodule checks once Lightning knows the world size
    processes = devices * nodes
    if batch_size % processes:
        raise uneven_batch_error(batch_size, processes, f" (trainer.devices={devices} x trainer.num_nodes={nodes})")
