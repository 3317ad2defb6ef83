"""Errors a user can cause with a config or a command line, reported as one sentence."""


class ConfigError(ValueError):
    """A value in the run's configuration is wrong; the message names it, what was expected and the fix."""
