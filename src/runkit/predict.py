"""Run a saved checkpoint on new inputs: `trainlab-predict ckpt_path=PATH [input=DIR]`.

Without `input`, it predicts the datamodule's predict split (the test split); with `input=DIR`,
every PNG/JPEG image in DIR, converted to what the model was trained on. The command line only:
the config is checked before Lightning is loaded, and `trainlab/evaluation.py` does the work.
"""

import hydra
from omegaconf import DictConfig

from runkit.cli import exit_on_user_error, run_console_script
from runkit.config import CONFIG_DIR, validate_config


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="predict")
@exit_on_user_error
def main(cfg: DictConfig) -> None:
    validate_config(cfg)
    from runkit.evaluation import predict
    from runkit.process.setup import log_each_line_once

    log_each_line_once()  # once Lightning is imported: its own console handler is there to remove
    predict(cfg)


def cli() -> None:
    """The `trainlab-predict` console script."""
    run_console_script(main, "predict")


if __name__ == "__main__":
    cli()
