"""Train a model: `trainlab-train [group=option ...] [key=value ...]` (or `python -m runkit.train`).

The command line only: Hydra composes the config and `trainlab/training.py` runs it. Lightning
(slow to import) is loaded when a run starts, not when this module is: a sweep's launcher process,
`--help`, `--cfg job` and a mistyped option never wait for it.
"""

import hydra
from omegaconf import DictConfig

from runkit.cli import exit_on_user_error, run_console_script
from runkit.config import CONFIG_DIR, ConfigError, validate_config
from runkit.process.mode import in_multirun


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="train")
@exit_on_user_error
def main(cfg: DictConfig) -> float | None:
    # The config is validated here, once. A single run with a mistake stops here, before anything is written or
    # Lightning is loaded; in a sweep, the job is recorded as failed and the others go on.
    try:
        validate_config(cfg)
    except ConfigError as error:
        if not in_multirun():
            raise
        from runkit.training import refuse_sweep_job

        return refuse_sweep_job(cfg, error)
    from runkit.training import run

    return run(cfg)


def cli() -> None:
    """The `trainlab-train` console script."""
    run_console_script(main, "train")


if __name__ == "__main__":
    cli()
