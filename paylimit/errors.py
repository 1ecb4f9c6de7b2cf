"""Errors a user can cause: the CLI prints them as one line and exits non-zero."""


class PaylimitError(Exception):
    """A mistake or an environment problem a user can fix; shown as one line, no traceback."""


class ConfigError(PaylimitError):
    """Settings, scenario files or arguments that cannot be used."""


class InfraError(PaylimitError):
    """Kafka or Redis cannot be installed, started or reached."""
