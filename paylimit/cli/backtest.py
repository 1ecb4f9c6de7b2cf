"""`paylimit backtest --rules FILE`: what rules would have raised over the transactions topic (or an
events file), beside what the rules in force raise, per rule, tier and local day; offline (nothing
produced, no offsets committed, no state shared with the live workers)."""

from __future__ import annotations

import json
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Annotated, Iterable, Optional

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from paylimit.cli.common import connected_settings, console, err_console
from paylimit.cli.limits import read_overrides
from paylimit.contracts import LimitAlert
from paylimit.errors import ConfigError
from paylimit.rules import effective_rules, load_rules, read_rules
from paylimit.settings import Settings
from stream_app.backtest import Replay, Row, compare, read_events, read_topic, topic_size
from stream_app.reader import Record


def _day(value: str | None, option: str) -> date | None:
    try:
        return date.fromisoformat(value) if value is not None else None
    except ValueError:
        raise ConfigError(f"{option} {value!r} is not a date (YYYY-MM-DD)") from None


def _batches(s: Settings, events: Path | None) -> tuple[Iterable[list[Record]], int]:
    """The records to replay, in batches, and how many there are."""
    if events is not None:
        records = read_events(events)
        return [records], len(records)
    consumer, ends = topic_size(s)
    return read_topic(s, consumer, ends), sum(high - low for low, high in ends.values())


def _users(users: list[str], shown: int = 3) -> str:
    """A few of the users, and how many more (`--json` lists them all)."""
    more = f" (+{len(users) - shown:,})" if len(users) > shown else ""
    return escape(", ".join(users[:shown]) + more) or "-"


def _table(rows: list[Row], records: int, seconds: float) -> Table:
    table = Table(title=f"back-test: {records:,} records in {seconds:.1f} s")
    for col in ("rule", "tier", "local date", "users", "in force", "new", "no longer", "earliest crossing (UTC)"):
        table.add_column(col, justify="right" if col in ("users", "in force") else "left", overflow="fold")
    for r in rows:
        earliest = r.earliest
        table.add_row(escape(r.rule), "alerted" if r.tier == "alert" else "warned", r.local_date.isoformat(),
                      str(len(r.users)), str(len(r.in_force)), _users(r.new), _users(r.no_longer),
                      earliest.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S") if earliest else "-",
                      style="yellow" if r.new or r.no_longer else None)
    return table


def backtest(
    rules: Annotated[Path, typer.Option("--rules", help="A rules file: the rules in force with these added or replaced")],
    since: Annotated[Optional[str], typer.Option("--from", help="Report local days from this date (YYYY-MM-DD)")] = None,
    until: Annotated[Optional[str], typer.Option("--to", help="Report local days up to this date (YYYY-MM-DD)")] = None,
    events: Annotated[Optional[Path], typer.Option("--events", help="Replay this events.jsonl instead of the topic")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object: the rows and totals")] = False,
    out: Annotated[Optional[Path], typer.Option("--out", help="Write the alerts it would raise to DIR/alerts.jsonl")] = None,
) -> None:
    """Replay past transactions through the worker's own rule evaluation and show what these rules
    would have raised, beside the rules in force (the rules topic's, daily_count, `paylimit limits`)."""
    first, last = _day(since, "--from"), _day(until, "--to")
    tried_rules = [r.model_copy(update={"shadow": False}) for r in load_rules(rules)]  # what they would do live
    s = connected_settings()
    stored = read_rules(s)
    overrides = read_overrides(s)
    limit_of = lambda user: overrides.get(user, s.daily_limit)  # noqa: E731
    now = datetime.now(timezone.utc)
    in_force = effective_rules(stored, s.daily_limit)
    tried = effective_rules({**stored, **{r.name: r for r in tried_rules}}, s.daily_limit)
    replays = [Replay(s, tried, limit_of, now)] + ([Replay(s, in_force, limit_of, now)] if tried != in_force else [])
    batches, total = _batches(s, events)
    started = datetime.now(timezone.utc)
    with Progress(TextColumn("replaying"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                  console=err_console, transient=True, disable=total < 50_000) as progress:
        task = progress.add_task("replay", total=total)
        for batch in batches:
            for replay in replays:
                for record in batch:
                    replay.feed(record)
            progress.advance(task, len(batch))
    seconds = (datetime.now(timezone.utc) - started).total_seconds()

    def wanted(alerts: Iterable[LimitAlert]) -> list[LimitAlert]:
        return sorted((a for a in alerts if (first is None or a.local_date >= first)
                       and (last is None or a.local_date <= last)), key=lambda a: a.alert_id)

    alerts = wanted(replays[0].alerts.values())
    rows = compare(alerts, wanted(replays[-1].alerts.values()))
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        (out / "alerts.jsonl").write_text("".join(a.model_dump_json() + "\n" for a in alerts), encoding="utf-8")
    if as_json:
        print(json.dumps({"records": total, "seconds": round(seconds, 3), "alerts": len(alerts),
                          "rules": [r.name for r in tried], "rows": [r.as_json() for r in rows]}))
        return
    console.print(_table(rows, total, seconds))
    changed = sum(bool(r.new or r.no_longer) for r in rows)
    console.print(f"{len(alerts)} alerts; {changed} of {len(rows)} rows differ from the rules in force",
                  highlight=False, markup=False)
