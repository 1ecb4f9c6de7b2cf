"""The services' logging: text lines (the default) or, with PAYLIMIT_LOG_FORMAT=json, one JSON
object per line (`time`, `level`, `logger`, `message`, and `exception` when there is one), for a log
collector. Either way (text: the notifier's and the dashboard's; the worker's text lines are
faust's) every secret setting's value (and a password in a URL setting) is replaced by `***` in
what is written: a line that quotes a URL or a client's error never leaks it."""

from __future__ import annotations

import logging
import sys
from datetime import datetime, timezone
from urllib.parse import urlsplit

import orjson
from pydantic import SecretStr

from paylimit.settings import Settings

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
REDACTED = "***"
log = logging.getLogger("paylimit")


def secrets(settings: Settings) -> list[str]:
    """The secret settings' values, and the passwords inside them (a URL's user:password@), longest first."""
    found: set[str] = set()
    for _, value in settings:
        if isinstance(value, SecretStr) and value.get_secret_value():
            found.add(value.get_secret_value())
            try:
                password = urlsplit(value.get_secret_value()).password
            except ValueError:
                password = None
            if password:
                found.add(password)
    return sorted(found, key=len, reverse=True)


class RedactingFormatter(logging.Formatter):
    def __init__(self, hidden: list[str], fmt: str | None = None) -> None:
        super().__init__(fmt)
        self.hidden = hidden

    def redact(self, text: str) -> str:
        for secret in self.hidden:
            text = text.replace(secret, REDACTED)
        return text

    def format(self, record: logging.LogRecord) -> str:
        return self.redact(super().format(record))


class JsonFormatter(RedactingFormatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {"time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
                 "level": record.levelname, "logger": record.name, "message": self.redact(record.getMessage())}
        if record.exc_info:
            entry["exception"] = self.redact(self.formatException(record.exc_info))
        return orjson.dumps(entry).decode()


def configure_logging(settings: Settings, level: int = logging.INFO) -> None:
    """Log at `level` to stderr in the settings' format (replacing any handler configured before)."""
    handler = logging.StreamHandler(sys.stderr)
    hidden = secrets(settings)
    handler.setFormatter(JsonFormatter(hidden) if settings.log_format == "json" else RedactingFormatter(hidden, TEXT_FORMAT))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)


def start_line(settings: Settings, line: str) -> None:
    """A service's start line: printed as it is (scripts read the port from it), or in JSON logs a
    log line like any other."""
    if settings.log_format == "json":
        log.info(line)
    else:
        print(line, flush=True)
