"""`paylimit shadow report [--since DATE] [--json]`: how the shadow rules fire on live traffic
beside the live rules, per local day, shadow rule and tier (the shadow topic and the alerts topic,
read to their end)."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import date
from typing import Annotated, Any, Iterable, Optional

import typer
from pydantic import ValidationError
from rich.markup import escape
from rich.table import Table

from paylimit.cli.common import connected_settings, console
from paylimit.contracts import LimitAlert
from paylimit.errors import ConfigError
from paylimit.kafka import ensure_topics, read_to_end
from paylimit.settings import Settings

app = typer.Typer(help="Shadow rules: counted live, their alerts never delivered (`rules set --shadow`).",
                  no_args_is_help=True)


@dataclass(frozen=True)
class ShadowRow:
    """One local day, shadow rule and tier: the users it fired for, and the users the live rules
    fired the same tier for that day."""

    local_date: date
    rule: str
    tier: str
    shadow: list[str]
    live: list[str]

    def as_json(self) -> dict[str, Any]:
        both = sorted(set(self.shadow) & set(self.live))
        return {"local_date": self.local_date.isoformat(), "rule": self.rule, "tier": self.tier,
                "shadow_users": self.shadow, "live_users": len(self.live), "both": both,
                "shadow_only": [u for u in self.shadow if u not in set(self.live)]}


def shadow_rows(shadow: Iterable[LimitAlert], live: Iterable[LimitAlert], since: date | None = None) -> list[ShadowRow]:
    """Per local day, shadow rule and tier (from `since` on), its users beside the live rules'."""
    fired: dict[tuple[date, str, str], set[str]] = {}
    for a in shadow:
        if since is None or a.local_date >= since:
            fired.setdefault((a.local_date, a.rule, a.tier), set()).add(a.user_id)
    by_day: dict[tuple[date, str], set[str]] = {}
    for a in live:
        by_day.setdefault((a.local_date, a.tier), set()).add(a.user_id)
    return [ShadowRow(day, rule, tier, sorted(users), sorted(by_day.get((day, tier), set())))
            for (day, rule, tier), users in sorted(fired.items())]


def read_alerts(settings: Settings, topic: str) -> list[LimitAlert]:
    """The alerts on `topic`, read to its end (a value that is no alert is skipped)."""
    changes, _ = read_to_end(settings, topic, None, f"{settings.app_id}-shadow-report-{uuid.uuid4().hex[:8]}")
    alerts = []
    for _, _, value in changes:
        try:
            alerts.append(LimitAlert.model_validate_json(value or b""))
        except ValidationError:
            continue
    return alerts


def _users(users: list[str], shown: int = 3) -> str:
    more = f" (+{len(users) - shown:,})" if len(users) > shown else ""
    return escape(", ".join(users[:shown]) + more) or "-"


@app.command("report")
def report(
    since: Annotated[Optional[str], typer.Option(help="Local days from this date (YYYY-MM-DD)")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object: the rows")] = False,
) -> None:
    """Per local day, shadow rule and tier: the users it fired for in shadow, beside the users the
    live rules fired the same tier for (in both, and in shadow only)."""
    try:
        first = date.fromisoformat(since) if since is not None else None
    except ValueError:
        raise ConfigError(f"--since {since!r} is not a date (YYYY-MM-DD)") from None
    s = connected_settings()
    ensure_topics(s)
    rows = shadow_rows(read_alerts(s, s.topic_alerts_shadow), read_alerts(s, s.topic_alerts), first)
    if as_json:
        print(json.dumps({"rows": [r.as_json() for r in rows]}))
        return
    table = Table(title="shadow rules beside the live rules")
    for col in ("local date", "rule", "tier", "shadow users", "live users", "in both", "shadow only"):
        table.add_column(col, justify="right" if col in ("shadow users", "live users", "in both") else "left",
                         overflow="fold")
    for r in rows:
        j = r.as_json()
        table.add_row(j["local_date"], escape(r.rule), "alerted" if r.tier == "alert" else "warned",
                      str(len(r.shadow)), str(len(r.live)), str(len(j["both"])), _users(j["shadow_only"]))
    console.print(table)
    if not rows:
        console.print("no shadow rule has fired", highlight=False, markup=False)
