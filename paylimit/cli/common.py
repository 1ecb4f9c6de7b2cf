"""What every command shares: the console, the settings (resolved to running infra) and one-line errors."""

from __future__ import annotations

import sys

from rich.console import Console

from paylimit.runtime.local import resolve
from paylimit.settings import Settings, get_settings

console = Console()
err_console = Console(stderr=True, soft_wrap=True)


def settings() -> Settings:
    """The settings, read from the environment once per command."""
    from pydantic import ValidationError

    from paylimit.errors import ConfigError

    try:
        return get_settings()
    except ValidationError as exc:
        first = exc.errors()[0]
        raise ConfigError(f"PAYLIMIT_{str(first['loc'][0]).upper()}: {first['msg']}") from None


def connected_settings() -> Settings:
    """Settings with Kafka and Redis addresses filled in from the running local infra if not given."""
    return resolve(settings())


def fail(message: str, code: int = 1) -> None:
    err_console.print(f"[bold red]error:[/] {message}", highlight=False)
    sys.exit(code)
