"""An option of a config group that no config folder holds, chosen on the command line.

Hydra composes a missing option of an optional group (`optional experiment: null` in train.yaml, `debug`,
`local`, `hparams_search`) as nothing at all, so `experiment=mnist_cnnn` would quietly train the defaults. A
missing option of any other group is Hydra's own error (trainlab/config/command_line.py tells it in one line).
"""

from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from runkit.config.errors import ConfigError, did_you_mean


def check_chosen_options_exist(hydra_cfg: DictConfig | None = None) -> None:
    """Raise a ConfigError for a `group=option` of the command line whose option is in no config folder; of
    this run by default, or of the composed config whose `hydra` section is given (a multirun's first job)."""
    if hydra_cfg is None:
        if not HydraConfig.initialized():
            return
        hydra_cfg = HydraConfig.get()
    folders = [Path(source.path) for source in hydra_cfg.runtime.config_sources if source.schema == "file"]
    chosen = {str(group): option for group, option in hydra_cfg.runtime.choices.items() if isinstance(option, str)}
    for override in hydra_cfg.overrides.task:
        group, _, option = str(override).lstrip("+").partition("=")
        if group in chosen and chosen[group] == option and not group.startswith("hydra"):
            check_option_exists(group, option, folders)


def check_search_is_a_multirun() -> None:
    """Hydra ignores the sweeper outside a multirun: `hparams_search=optuna` without -m would train one ordinary
    run and say nothing. Refused instead, with the command that searches."""
    if not HydraConfig.initialized() or HydraConfig.get().mode != RunMode.RUN:
        return
    search = HydraConfig.get().runtime.choices.get("hparams_search")
    if search:
        raise ConfigError(
            f"hparams_search={search} runs a search only as a multirun, and without -m this would be one ordinary "
            f"run; add -m: trainlab-train -m hparams_search={search} ..."
        )


def check_option_exists(group: str, option: str, folders: list[Path]) -> None:
    options = group_options(group, folders)
    if options and option not in options:
        raise ConfigError(
            f"{group}={option} is not an option of {group}; the options are: {', '.join(options)}"
            f"{did_you_mean(option, options)}."
        )


def group_options(group: str, folders: list[Path]) -> list[str]:
    """The options of a group in the config folders (configs/, a --config-dir): its YAML files, without the
    `_`-named files options share."""
    return sorted(
        {
            path.relative_to(folder / group).with_suffix("").as_posix()
            for folder in folders
            for path in (folder / group).rglob("*.yaml")
            if not path.name.startswith("_")
        }
    )
