"""Test a saved checkpoint: `trainlab-eval ckpt_path=PATH [data=...] [model=...]`; a run's
`checkpoints/best.ckpt` is the checkpoint the run itself tested.

The command line only: the config is checked before Lightning (slow to import) is loaded, and
`trainlab/evaluation.py` does the work.
"""

import logging

import hydra
from omegaconf import DictConfig

from runkit.cli import exit_on_user_error, run_console_script
from runkit.config import CONFIG_DIR, validate_config

log = logging.getLogger(__name__)


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="eval")
@exit_on_user_error
def main(cfg: DictConfig) -> None:
    validate_config(cfg)
    from runkit.evaluation import evaluate
    from runkit.process.setup import log_each_line_once

    log_each_line_once()  # once Lightning is imported: its own console handler is there to remove
    metrics = evaluate(cfg)
    log.info("Test metrics: %s", ", ".join(f"{k}={v:.4f}" for k, v in sorted(metrics.items())))


def cli() -> None:
    """The `trainlab-eval` console script."""
    run_console_script(main, "eval")


if __name__ == "__main__":
    cli()
