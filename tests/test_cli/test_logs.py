"""The services' log lines (`paylimit.cli.logs`): secret settings redacted in both formats, pure.
tests/test_operations.py runs the services with JSON logs."""

from __future__ import annotations

import logging

from pydantic import SecretStr

from paylimit.cli.logs import JsonFormatter, RedactingFormatter, secrets
from paylimit.settings import get_settings


def test_secret_settings_are_redacted_in_both_formats() -> None:
    s = get_settings(redis_url=SecretStr("redis://:hunter2pw@redis:6379/0"),
                     webhook_url=SecretStr("https://hooks.example/T0KEN123"))
    hidden = secrets(s)
    record = logging.LogRecord("paylimit.notifier", logging.WARNING, __file__, 1,
                               "auth %s failed at %s; url %s", ("hunter2pw", "https://hooks.example/T0KEN123",
                                                               "redis://:hunter2pw@redis:6379/0"), None)
    for formatter in (RedactingFormatter(hidden, "%(message)s"), JsonFormatter(hidden)):
        line = formatter.format(record)
        assert "hunter2pw" not in line and "T0KEN123" not in line and "***" in line, line
