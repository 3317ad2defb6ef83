"""Everything about a run's config: where the config files live, their schema, validation and the errors a user can make.

Callers import from here: `from runkit.config import ConfigError, validate_config, CONFIG_DIR`.
"""

from runkit.config.command_line import CommandLine, check_multirun, explain, read_command_line
from runkit.config.compose import CONFIG_DIR, compose
from runkit.config.errors import ConfigError, exit_with_error, uneven_batch_error, user_error_message
from runkit.config.validate import validate_config

__all__ = [
    "CONFIG_DIR",
    "CommandLine",
    "check_multirun",
    "compose",
    "ConfigError",
    "exit_with_error",
    "explain",
    "read_command_line",
    "uneven_batch_error",
    "user_error_message",
    "validate_config",
]
