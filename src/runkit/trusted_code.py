"""Which code a file from elsewhere may choose: the `_target_`s of a checkpoint's stored config.

torch's `weights_only` keeps a checkpoint to plain data, but that data names classes by `_target_`, and loading a
model builds them. So before anything is built, every `_target_` in the stored config must name code the project
vouches for: a package of TRUSTED_PACKAGES, the project's own packages, one the user added with
`trusted_packages=[...]`, or exactly a class the user's own config names. Anything else is refused in one line.
"""

import importlib
import importlib.util
import sys
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from runkit.config.errors import ConfigError
from runkit.project import in_packages, own_packages

# The libraries a run is legitimately made of: layers and losses, optimizers and their schedules, torchvision's
# models and transforms, metrics, and Lightning's Trainer, callbacks, loggers and profilers.
TRUSTED_PACKAGES = (
    "torch.nn",
    "torch.optim",
    "torchvision.models",
    "torchvision.transforms",
    "torchmetrics",
    "lightning.pytorch.Trainer",
    "lightning.pytorch.trainer",
    "lightning.pytorch.callbacks",
    "lightning.pytorch.loggers",
    "lightning.pytorch.profilers",
)


@dataclass(frozen=True)
class Trust:
    """What may be built from a file: code defined under `packages` (dotted prefixes), and code the user vouched for
    by name: under `user_packages`, or exactly one of `targets`."""

    packages: tuple[str, ...] = ()
    user_packages: tuple[str, ...] = ()
    targets: frozenset[str] = field(default_factory=frozenset)

    @classmethod
    def of(cls, user_packages: Iterable[str] = (), own_config: Any = None) -> "Trust":
        """The project's trust, widened by the user's `trusted_packages` and the targets of their own config."""
        targets = frozenset(value for _, value in targets_in(own_config))
        return cls((*TRUSTED_PACKAGES, *own_packages()), tuple(str(p) for p in user_packages), targets)

    def vouched_by_user(self, name: str) -> bool:
        return name in self.targets or in_packages(name, self.user_packages)

    def covers(self, name: str) -> bool:
        """Whether `name` may be built. A name under the project's packages must also be defined there, so that
        what a trusted module imports (`torch.nn.modules.module.torch.save`) does not pass for it."""
        if self.vouched_by_user(name):
            return True
        return in_packages(name, self.packages) and in_packages(defined_in(name) or "", self.packages)


def targets_in(config: Any, path: str = "") -> Iterator[tuple[str, str]]:
    """Every `_target_` in a plain config (dicts and lists, or OmegaConf's), as (key, target)."""
    if isinstance(config, Mapping):
        for key, value in config.items():
            where = f"{path}.{key}" if path else str(key)
            if key == "_target_":
                yield where, str(value)
            else:
                yield from targets_in(value, where)
    elif isinstance(config, Sequence) and not isinstance(config, str | bytes):
        for index, value in enumerate(config):
            yield from targets_in(value, f"{path}[{index}]")


def defined_in(name: str) -> str | None:
    """The module that defines the object `name` points to, found without importing anything outside the trust
    already checked; None where it cannot be found. `runkit.checkpoints.os.remove` is os.remove, defined in posix."""
    parts = name.split(".")
    for cut in range(len(parts), 0, -1):
        module_name = ".".join(parts[:cut])
        try:
            if importlib.util.find_spec(module_name) is None:
                continue
        except (ImportError, ValueError):
            continue
        obj: Any = importlib.import_module(module_name)
        for attribute in parts[cut:]:
            obj = getattr(obj, attribute, None)
            if obj is None:
                return None
        return obj.__name__ if isinstance(obj, type(sys)) else getattr(obj, "__module__", None)
    return None


def check_trusted(config: Any, trust: Trust, source: str, how_to_trust: str = "add trusted_packages=[{}]") -> None:
    """Refuse, in one line, the first `_target_` of `config` (read from `source`) that `trust` does not cover.
    `how_to_trust` says how the user vouches for a package, `{}` standing for the target's top-level package."""
    for key, target in targets_in(config):
        if trust.covers(target):
            continue
        raise ConfigError(
            f"{source} names {key}={target}, which is not code trainlab trusts, so nothing was built; "
            f"if you trust this file, {how_to_trust.format(target.partition('.')[0])}."
        )


def trust_of(cfg: Any) -> Trust:
    """The trust of a run's config: the project's, its `trusted_packages`, and the targets it names itself."""
    from omegaconf import OmegaConf  # the config's own form; only where a config is at hand

    own = OmegaConf.to_container(cfg, resolve=False) if OmegaConf.is_config(cfg) else cfg
    return Trust.of(cfg.get("trusted_packages") or (), own)
