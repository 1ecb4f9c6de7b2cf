"""`paylimit notifications` (the shared record of delivered notifications, as a table or JSON lines) and
`paylimit verify`; both read the record in Redis, so they show every notifier's deliveries from any machine."""

from __future__ import annotations

import json
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Annotated, Iterable, Iterator, Optional

import redis

import typer
from rich.table import Table

from paylimit.cli.common import console, err_console, settings
from paylimit.contracts import Notification
from paylimit.errors import ConfigError, InfraError
from paylimit.settings import Settings
from paylimit.verify import Verification, read_expected, verify as compare


def _parse_date(value: str | None) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ConfigError(f"--date {value!r} is not a date (YYYY-MM-DD)") from None


@contextmanager
def _reading_record() -> Iterator[None]:
    """Redis trouble while reading the record becomes one line, not a traceback."""
    try:
        yield
    except redis.RedisError as exc:
        raise InfraError(f"cannot read the notifications record in Redis: {exc}") from None


def _matches(n: Notification, user: str | None, day: date | None) -> bool:
    return (user is None or n.user_id == user) and (day is None or n.local_date == day)


def _json_line(n: Notification) -> str:
    return n.model_dump_json()


def _row(n: Notification) -> tuple[str, ...]:
    tx = n.crossing_transaction_id
    return (n.user_id, f"{n.rule} {'over' if n.tier == 'alert' else 'warn'}", n.local_date.isoformat(), n.timezone,
            f"{n.value}/{n.limit}" + (" late" if n.late else ""),
            tx if len(tx) <= 12 else tx[:8] + "…",  # --json has the whole id
            n.delivered_at.strftime("%H:%M:%S"))


def notifications_table(rows: Iterable[Notification], title: str = "notifications") -> Table:
    table = Table(title=title)
    for col in ("user", "rule", "local date", "zone", "value", "crossing", "delivered"):
        table.add_column(col, overflow="fold", no_wrap=col != "zone")
    for n in rows:
        table.add_row(*_row(n))
    return table


def notifications(
    user: Annotated[Optional[str], typer.Option("--user", help="Only this user's notifications")] = None,
    day: Annotated[Optional[str], typer.Option("--date", help="Only this local date (YYYY-MM-DD)")] = None,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep printing new notifications (Ctrl-C ends)")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line: LimitAlert fields + delivered_at")] = False,
) -> None:
    """Show the delivered notifications (the shared record: every notifier's)."""
    from paylimit.notification_record import redis_client
    from paylimit.notification_record import follow_record, notifier_counts, read_record_at

    s = _redis_settings()
    wanted = _parse_date(day)
    client = redis_client(s)
    with _reading_record():
        everything, end = read_record_at(client, s)
        counts = notifier_counts(client, s)
        _note_trimmed(client, s)
    existing = [n for n in everything if _matches(n, user, wanted)]
    if as_json:
        for n in existing:
            print(_json_line(n), flush=True)
    else:
        console.print(notifications_table(existing))
        for who, recorded in sorted(counts.items()):
            console.print(f"recorded by notifier {who}: {recorded}", highlight=False, markup=False)
    if not follow:
        return
    try:
        with _reading_record():
            for n in follow_record(client, s, start=end):
                if not _matches(n, user, wanted):
                    continue
                if as_json:
                    print(_json_line(n), flush=True)
                else:
                    console.print("  ".join(_row(n)), highlight=False)
    except KeyboardInterrupt:
        return


def _note_trimmed(client: redis.Redis, s: Settings) -> None:
    """Say so on stderr when the record no longer holds every notification (its bound)."""
    from paylimit.notification_record import trimmed

    if gone := trimmed(client, s):
        err_console.print(f"note: the record holds the latest {s.record_max_entries:,} notifications; {gone:,} older "
                          "ones were trimmed (PAYLIMIT_RECORD_MAX_ENTRIES): each notifier's notifications log has "
                          "them", highlight=False, markup=False)


def _redis_settings() -> Settings:
    """The settings, with the running local infra's Redis when no PAYLIMIT_REDIS_URL is given
    (these commands read the record in Redis only)."""
    from paylimit.runtime.local import resolve

    s = settings()
    return s if s.redis_url else resolve(s)


def verification_table(result: Verification) -> Table:
    table = Table(title="verification: delivered vs expected")
    table.add_column("check")
    table.add_column("count", justify="right")
    table.add_column("alert ids", overflow="fold")
    table.add_row("expected", str(result.expected), "")
    table.add_row("delivered", str(result.delivered), "")
    for name, ids in (("missing", result.missing), ("extra", result.extra), ("duplicate", result.duplicate)):
        table.add_row(name, str(len(ids)), ", ".join(ids), style="red" if ids else None)
    wrong = [f"{a} ({', '.join(fields)})" for a, fields in result.wrong_field.items()]
    table.add_row("wrong field", str(len(wrong)), "; ".join(wrong), style="red" if wrong else None)
    return table


def verdict(result: Verification) -> str:
    return "[bold green]clean[/]" if result.clean else "[bold red]NOT clean[/]"


def verify(
    expected: Annotated[Path, typer.Option("--expected", help="expected_alerts.jsonl written by `paylimit simulate`")],
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object: the counts and the offending alert ids")] = False,
) -> None:
    """Compare the delivered notifications with the expected alerts; exit 0 only when clean."""
    from paylimit.notification_record import redis_client
    from paylimit.notification_record import read_record

    s = _redis_settings()
    want = read_expected(expected)
    with _reading_record():
        client = redis_client(s)
        delivered = read_record(client, s)
        _note_trimmed(client, s)
    result = compare(want, delivered)
    if as_json:
        print(json.dumps(result.as_json()))
    else:
        console.print(verification_table(result))
        console.print(verdict(result))
    raise typer.Exit(0 if result.clean else 1)
