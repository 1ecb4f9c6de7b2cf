"""The record of delivered notifications, shared by every notifier: a Redis stream, read from any machine.

`{app_id}:notifications` holds one entry per delivered alert, in delivery order: the `Notification`
JSON and the name of the notifier that recorded it. Only the fenced confirm script
(`notifier.delivery`) adds to it, in the same atomic step that marks the alert delivered, so it
holds each alert_id exactly once; the same step trims it to its latest
`PAYLIMIT_RECORD_MAX_ENTRIES` (`trimmed` says how many went; each notifier's log keeps them for
good). The hash `{app_id}:notifier-counts` counts, in that same step, the entries each notifier
recorded (its `delivered` metric, exact across kill -9).

Durability is Redis's: run it with `appendonly yes` and `appendfsync always` (the local infra does);
`paylimit notifications`, `paylimit verify` and the dashboard read this record, never a local file.
"""

from __future__ import annotations

import socket
from typing import Any, Callable, Iterator

import redis

from paylimit.contracts import Notification
from paylimit.errors import ConfigError, InfraError
from paylimit.settings import Settings

PAGE = 1000  # entries per XRANGE / XREAD call


def redis_client(settings: Settings) -> redis.Redis:
    """A Redis client for the notifier (no I/O until first use)."""
    if not settings.redis_url:
        raise ConfigError("Redis URL is not set (PAYLIMIT_REDIS_URL)")
    return redis.Redis.from_url(settings.redis_url.get_secret_value(), decode_responses=True, socket_timeout=5,
                                socket_connect_timeout=2)


def check_login(settings: Settings) -> None:
    """InfraError (one line) if Redis refuses the URL's credentials: no retry helps with those. A
    Redis that does not answer yet is not an error here; the notifier waits for it."""
    try:
        redis_client(settings).ping()
    except redis.AuthenticationError as exc:
        raise InfraError(f"Redis refused the login (PAYLIMIT_REDIS_URL): {exc}") from None
    except (redis.ConnectionError, redis.TimeoutError):
        pass


def record_key(settings: Settings) -> str:
    return f"{settings.app_id}:notifications"


def counts_key(settings: Settings) -> str:
    return f"{settings.app_id}:notifier-counts"


def notifier_name(settings: Settings) -> str:
    """How this notifier is named in the record: its machine and its PAYLIMIT_HOME (stable across restarts)."""
    return f"{socket.gethostname()}:{settings.home.resolve()}"


def _entries(client: redis.Redis, settings: Settings) -> Iterator[tuple[str, dict[str, str]]]:
    """Every (stream id, fields) of the record, oldest first, a page at a time."""
    low = "-"
    while True:
        entries: list[Any] = client.xrange(record_key(settings), min=low, count=PAGE)  # type: ignore[assignment]
        for entry_id, fields in entries:
            yield str(entry_id), fields
        if len(entries) < PAGE:
            return
        low = f"({entries[-1][0]}"  # exclusive: after the last entry read


def read_record_at(client: redis.Redis, settings: Settings) -> tuple[list[Notification], str]:
    """Every recorded notification, in delivery order, and the stream id to follow from."""
    out: list[Notification] = []
    last = "0-0"
    for last, fields in _entries(client, settings):
        out.append(Notification.model_validate_json(fields["notification"]))
    return out, last


def read_record(client: redis.Redis, settings: Settings) -> list[Notification]:
    """Every recorded notification, in delivery order."""
    return read_record_at(client, settings)[0]


def read_delivered(settings: Settings) -> list[Notification]:
    """Every recorded notification, in delivery order, read with a client of its own."""
    return read_record(redis_client(settings), settings)


def recorders(client: redis.Redis, settings: Settings) -> dict[str, list[str]]:
    """Notifier name -> the alert_ids it recorded, in order."""
    out: dict[str, list[str]] = {}
    for _, fields in _entries(client, settings):
        alert_id = Notification.model_validate_json(fields["notification"]).alert_id
        out.setdefault(fields.get("notifier", ""), []).append(alert_id)
    return out


def trimmed(client: redis.Redis, settings: Settings) -> int:
    """How many entries the record's trimming removed (0 when it does not exist yet)."""
    try:
        info: dict[str, Any] = client.xinfo_stream(record_key(settings))  # type: ignore[assignment]
    except redis.ResponseError:  # no such key
        return 0
    return int(info.get("entries-added", info["length"])) - int(info["length"])


def notifier_counts(client: redis.Redis, settings: Settings) -> dict[str, int]:
    """Notifier name -> how many notifications it recorded."""
    counts: dict[str, str] = client.hgetall(counts_key(settings))  # type: ignore[assignment]
    return {k: int(v) for k, v in counts.items()}


def follow_record(client: redis.Redis, settings: Settings, *, start: str,
                  stopped: Callable[[], bool] = lambda: False, block_ms: int = 1000) -> Iterator[Notification]:
    """Yield the notifications recorded after stream id `start` (like tail -f); ends when `stopped()`."""
    last = start
    while not stopped():
        reply: list[Any] = client.xread({record_key(settings): last}, count=PAGE, block=block_ms)  # type: ignore[assignment]
        for _, entries in reply or []:
            for _, fields in entries:
                yield Notification.model_validate_json(fields["notification"])
            last = str(entries[-1][0])
