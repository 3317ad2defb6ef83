"""Everything about a run's config: where the config files live, their schema, validation and the errors a user can make.

Callers import from here: `from trainlab.config import ConfigError, validate_config, CONFIG_DIR`.
"""

from pathlib import Path

from trainlab.config.errors import ConfigError, uneven_batch_error, user_error_message
from trainlab.config.validate import validate_config

# The template is used from a clone (editable install), so the configs sit at the repository root.
CONFIG_DIR = str(Path(__file__).resolve().parents[3] / "configs")

__all__ = ["CONFIG_DIR", "ConfigError", "uneven_batch_error", "user_error_message", "validate_config"]
