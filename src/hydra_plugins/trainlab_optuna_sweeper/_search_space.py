"""The search space: `hydra.sweeper.params` and the command line's sweeps, in Hydra's grammar, as Optuna distributions.

choice(a, b, c)  or  a,b,c          -> CategoricalDistribution
range(start, stop[, step])          -> IntDistribution (FloatDistribution with a step for floats), stop excluded
interval(low, high)                 -> FloatDistribution
tag(log, interval(low, high))       -> the same on a log scale; tag(int, ...) draws integers
a plain value                       -> fixed: passed to every trial as it is
"""

# trainlab's own module. The leading underscore keeps Hydra's plugin scan, which imports every other module under
# hydra_plugins/ in every run, from importing Optuna with it (tests/runkit/test_multirun.py checks a plain run imports none).

import itertools
import math
import re
from dataclasses import dataclass
from typing import Any

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import ChoiceSweep, IntervalSweep, Override, RangeSweep
from hydra.errors import HydraException
from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution, IntDistribution

from runkit.config import ConfigError

GRAMMAR_HINT = "e.g. choice(32, 64), range(1, 5), interval(0, 0.5) or tag(log, interval(1e-4, 0.1))"


@dataclass
class SearchSpace:
    distributions: dict[str, BaseDistribution]  # searched: key -> what the sampler draws from
    fixed: list[str]  # overrides every trial gets as they are

    def overrides(self, params: dict[str, Any]) -> list[str]:
        """A trial's job overrides: the fixed ones, then the trial's drawn values."""
        return [*self.fixed, *(f"{key}={as_override_value(value)}" for key, value in params.items())]


def search_space(params: dict[str, Any], arguments: list[str]) -> SearchSpace:
    """`hydra.sweeper.params`, then the command line's overrides (which win for the same key). A param set to
    null is left out: a search file built on another drops a key its model does not have."""
    lines = [f"{key}={value}" for key, value in params.items() if value is not None]
    overrides: dict[str, Override] = {}
    for line, source in [*((line, "hydra.sweeper.params.") for line in lines), *((a, "") for a in arguments)]:
        override = parse(line, source)
        overrides[override.get_key_element()] = override
    distributions: dict[str, BaseDistribution] = {}
    fixed: list[str] = []
    for key, override in overrides.items():
        if override.is_sweep_override():
            distributions[key] = distribution(key, override)
        else:
            fixed.append(override.input_line)
    return SearchSpace(distributions, fixed)


def parse(line: str, source: str) -> Override:
    try:
        return OverridesParser.create().parse_overrides([line])[0]
    except HydraException as error:
        key, _, value = line.partition("=")
        reason = str(error).strip().splitlines()[0]
        raise ConfigError(
            f"{source}{key}={value} is not in Hydra's override grammar ({reason}); write a sweep as {GRAMMAR_HINT}."
        ) from None


def distribution(key: str, override: Override) -> BaseDistribution:
    sweep = override.value()
    tags = set(getattr(sweep, "tags", ()))
    if isinstance(sweep, ChoiceSweep):
        values = list(sweep.list)
        if any(isinstance(value, dict | list) for value in values):
            raise ConfigError(f"{key}={override.get_value_element_as_str()}: a choice's options must be single values.")
        return CategoricalDistribution(values)
    if isinstance(sweep, RangeSweep):
        start, stop, step = sweep.start, sweep.stop, sweep.step
        count = math.ceil((stop - start) / step - 1e-9)  # stop is excluded, as in Python's range
        if count < 1:
            raise ConfigError(f"{key}={override.get_value_element_as_str()} is an empty range; use range(low, high).")
        last = start + step * (count - 1)
        if all(float(v).is_integer() for v in (start, stop, step)):
            return IntDistribution(int(start), int(last), step=int(step))
        return FloatDistribution(start, last, step=step)
    if isinstance(sweep, IntervalSweep):
        if sweep.start >= sweep.end:
            raise ConfigError(f"{key}={override.get_value_element_as_str()}: an interval needs low < high.")
        log = "log" in tags
        if "int" in tags:
            return IntDistribution(int(sweep.start), int(sweep.end), log=log)
        return FloatDistribution(sweep.start, sweep.end, log=log)
    raise ConfigError(
        f"{key}={override.get_value_element_as_str()} is a sweep Optuna cannot draw from; use {GRAMMAR_HINT}."
    )


def grid_of(space: SearchSpace) -> list[dict[str, Any]]:
    """Every combination of the searched keys' values, in the order Hydra's basic sweeper runs them (the last key
    varies fastest); each key must have finitely many values."""
    grid: dict[str, list[Any]] = {}
    for key, drawn in space.distributions.items():
        if isinstance(drawn, CategoricalDistribution):
            grid[key] = list(drawn.choices)
        elif isinstance(drawn, IntDistribution) and not drawn.log:
            grid[key] = list(range(drawn.low, drawn.high + 1, drawn.step))
        elif isinstance(drawn, FloatDistribution) and drawn.step is not None:
            count = round((drawn.high - drawn.low) / drawn.step) + 1
            grid[key] = [drawn.low + drawn.step * index for index in range(count)]
        else:
            raise ConfigError(
                f"{key} is an interval, which a grid cannot list; give it values, e.g. {key}=0.1,0.01 or "
                f"choice(0.1, 0.01), or a range(...)."
            )
    if not grid:
        raise ConfigError("hparams_search=grid found nothing to sweep; give values to sweep, e.g. seed=1,2,3.")
    return [dict(zip(grid, values, strict=True)) for values in itertools.product(*grid.values())]


PLAIN = re.compile(r"^[\w.\-/]+$")


def as_override_value(value: Any) -> str:
    """A drawn value as it goes on a command line; strings with spaces or special characters are quoted."""
    if isinstance(value, str) and not PLAIN.match(value):
        return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)
