"""What every command shares: the console, the settings (resolved to running infra) and one-line errors."""

from __future__ import annotations

import os
import sys
import threading
from typing import Any
from urllib.parse import urlsplit

from rich.console import Console
from rich.markup import escape

from paylimit.kafka import CONNECT_TIMEOUT, wait_for_broker
from paylimit.runtime.local import resolve
from paylimit.settings import Settings, get_settings

console = Console()
err_console = Console(stderr=True, soft_wrap=True)


def settings() -> Settings:
    """The settings, read from the environment once per command; a bad one is a ConfigError naming
    its variable (all of them, on one line, when several are bad)."""
    from pydantic import ValidationError
    from pydantic_settings import SettingsError

    from paylimit.errors import ConfigError

    try:
        return get_settings()
    except ValidationError as exc:
        raise ConfigError("; ".join(_setting_error(e) for e in exc.errors())) from None
    except SettingsError as exc:  # a value pydantic-settings could not even parse
        raise ConfigError(str(exc)) from None


def _setting_error(error: Any) -> str:
    """`PAYLIMIT_NAME: what is wrong`, without pydantic's "Value error, " prefix."""
    message = str(error["msg"]).removeprefix("Value error, ")
    if not error["loc"]:  # a check of several settings, which its message names
        return message
    return f"PAYLIMIT_{str(error['loc'][0]).upper()}: {message}"


def connected_settings() -> Settings:
    """Settings with Kafka and Redis addresses filled in from the running local infra if not given,
    once Kafka answers: an unreachable broker is one line after CONNECT_TIMEOUT, not a client's
    retries and a traceback."""
    s = resolve(settings())
    wait_for_broker(s, timeout=CONNECT_TIMEOUT)
    return s


def masked(url: str | None) -> str | None:
    """A URL with its password masked, for the screen (the local Redis's, secured)."""
    parts = urlsplit(url or "")
    if not parts.password:
        return url
    return parts._replace(netloc=parts.netloc.replace(f":{parts.password}@", ":***@", 1)).geturl()


def fail(message: str, code: int = 1) -> None:
    err_console.print(f"[bold red]error:[/] {escape(message)}", highlight=False)  # a message is text, not markup
    sys.exit(code)


#: seconds a service has, after SIGTERM or SIGINT, to stop cleanly before it exits anyway
STOP_GRACE = 5.0


def exit_after_grace(service: str) -> None:
    """Called when a service is asked to stop: if its clean stop takes longer than STOP_GRACE
    (its last writes waiting for a broker that is gone, faust's consumer thread retrying it), the
    process exits anyway. That is no worse than `kill -9`, which every service survives: the
    worker replays from its changelog, the notifier from its stored offsets."""

    def give_up() -> None:
        print(f"{service} did not stop within {STOP_GRACE:.0f} s of the signal: exiting without waiting",
              file=sys.stderr, flush=True)
        os._exit(1)

    timer = threading.Timer(STOP_GRACE, give_up)
    timer.daemon = True
    timer.start()
