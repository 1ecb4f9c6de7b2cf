"""The worker's HTTP views: a user's usage today in their own zone (per limit rule too), the record
accounting (JSON), its metrics (Prometheus) and its health.

Any worker answers for any user: a user's counts live on the worker assigned the partition of the
transactions topic the user's records are on, `paylimit.kafka.partition_for(user_id)` (the
partitioner every paylimit producer uses, and outside producers must). A worker asked about a user
on another worker's partition forwards the query to that worker's advertised URL (from the
consumer group's assignment, which faust shares with every member). faust's own `table_route`
is not used: it hashes faust's serialized form of the key, another partition.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any, Callable

import aiohttp
import faust
from faust.web import Request, Response, View
from prometheus_client import CollectorRegistry

from paylimit.contracts import TIMEZONES
from paylimit.kafka import partition_for
from paylimit.serving import exposition, health
from paylimit.rules import DEFAULT_RULE, Rule
from paylimit.settings import Settings
from stream_app.counting import day_key
from stream_app.limits import limit_for
from stream_app.localday import local_day
from stream_app.metrics import Metrics
from stream_app.alerts import instant
from stream_app.localday import day_bounds
from stream_app.state import DayCount, decode_day
from stream_app.tiers import DAY_US, kept_of, measured, micros, window_at


def _number(value: Decimal, rule: Rule) -> int | str:
    """A count as a JSON integer, an amount as its exact decimal text."""
    return int(value) if rule.measure == "count" else str(value)


def rule_usage(days: Mapping[str, bytes | None], rules: Sequence[Rule], daily_limit: int, user_id: str,
               found: DayCount | None, on: date, zone: str, at: datetime) -> list[dict[str, Any]]:
    """Each rule's value for the user, limit, remaining and window bounds: on the local date `on`
    for a calendar-day rule, and at the instant `at` for a 24 h window."""
    def day_of(d: date) -> DayCount | None:
        key = day_key(user_id, d.isoformat())
        raw = days.get(key)
        return decode_day(key, raw) if raw else None

    around = [d for d in (day_of(on + timedelta(days=n)) for n in (-2, -1, 1)) if d is not None]
    start, end = day_bounds(on, zone)
    out = []
    for rule in rules:
        if not rule.applies_to(user_id):
            continue
        limit = Decimal(daily_limit) if rule.name == DEFAULT_RULE else rule.limit_for(user_id)
        bounds: tuple[datetime, datetime] | None = (start, end)
        if rule.window == "calendar_day":
            states = kept_of(rule, [found]) if found else []
            value = Decimal(found.count if found else 0) if rule.name == DEFAULT_RULE else (
                states[0].value if states else Decimal(0))
        else:
            t = micros(at)
            kept = kept_of(rule, [*around, *([found] if found else [])])
            window = window_at(rule, t, kept)
            value = measured(rule, window[1]) if window else Decimal(0)
            bounds = None if window is None else (instant(window[0], zone), instant(
                t if rule.window == "rolling_24h" else window[0] + DAY_US, zone))
        out.append({"rule": rule.name, "measure": rule.measure, "window": rule.window,
                    "value": _number(value, rule), "limit": _number(limit, rule),
                    "remaining": _number(max(Decimal(0), limit - value), rule), "over_limit": value > limit,
                    "window_start": bounds[0].isoformat() if bounds else None,
                    "window_end": bounds[1].isoformat() if bounds else None,
                    **({"shadow": True} if rule.shadow else {})})  # marked only: a live rule's answer is as before
    return out


def usage(days: Mapping[str, bytes | None], limit: int, user_id: str, now: datetime, zone: str | None,
          on: date | None, default_zone: str, rules: Sequence[Rule] = ()) -> dict[str, Any]:
    """The user's count on their local `on` date (default: today in their zone), from the `days`
    table's values; and each rule's usage (`rule_usage`: a 24 h window at `now`, or at the end of
    a past `on` date)."""
    found: DayCount | None = None
    if on is None:
        # The user's zone is in their day record; today is one of these dates in any zone.
        utc_today = now.date()
        for candidate in (utc_today - timedelta(days=1), utc_today, utc_today + timedelta(days=1)):
            key = day_key(user_id, candidate.isoformat())
            raw = days.get(key)
            day = decode_day(key, raw) if raw else None
            if day is not None and local_day(now, zone or day.zone).date == candidate:
                found = day
    else:
        key = day_key(user_id, on.isoformat())
        raw = days.get(key)
        found = decode_day(key, raw) if raw else None
    local = local_day(now, found.zone if found else zone or default_zone)
    count = found.count if found else 0
    on_date = on or local.date
    at = min(now, day_bounds(on_date, local.zone)[1] - timedelta(microseconds=1))
    return {
        "rules": rule_usage(days, rules, limit, user_id, found, on_date, local.zone, at),
        "user_id": user_id,
        "local_date": (on or local.date).isoformat(),
        "timezone": found.zone if found else local.zone,
        "count": count,
        "limit": limit,
        "remaining": max(0, limit - count),
        "over_limit": count > limit,
    }


#: set on a forwarded query: the worker it reaches answers it or says 503, never forwards it again,
#: so two workers whose views of the assignment differ for a moment never pass a query around
FORWARDED_BY = "X-Paylimit-Forwarded-By"
FORWARD_TIMEOUT = aiohttp.ClientTimeout(total=5)


def owner(distribution: Mapping[str, Mapping[str, Sequence[int]]], topic: str, partition: int) -> str | None:
    """The URL of the member `distribution` (member URL -> topic -> partitions) assigns `partition`
    of `topic` to, or None when none is (before the first assignment)."""
    for url, topics in distribution.items():
        if partition in topics.get(topic, ()):
            return url
    return None


def register_views(app: faust.App, settings: Settings, days: Any, limits: Mapping[bytes, bytes], metrics: Metrics,
                   ready: Callable[[], bool], registry: CollectorRegistry,
                   rules: Callable[[], Sequence[Rule]] = tuple) -> None:
    me = str(app.conf.canonical_url)

    async def forward(view: View, request: Request, url: str) -> Response:
        """The owner's answer to the same query, passed through."""
        try:
            async with app.http_client.get(f"{url.rstrip('/')}{request.rel_url}", headers={FORWARDED_BY: me},
                                           timeout=FORWARD_TIMEOUT) as resp:
                return view.bytes(await resp.read(), content_type=resp.content_type, status=resp.status)
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            return view.json({"error": f"the worker that owns this user ({url}) did not answer "
                                       f"({type(exc).__name__}); ask again shortly"}, status=503)

    @app.page("/users/{user_id}/usage")
    async def user_usage(view: View, request: Request, user_id: str) -> Response:
        zone = request.query.get("timezone")
        if zone is not None and zone not in TIMEZONES:
            return view.json({"error": f"unknown time zone {zone!r}"}, status=400)
        try:
            on = date.fromisoformat(request.query["date"]) if "date" in request.query else None
        except ValueError:
            return view.json({"error": "date must be YYYY-MM-DD"}, status=400)
        if not ready():  # before its state is restored the worker would answer a count of 0
            return view.json({"error": "the worker's state is being restored (a start or a rebalance); "
                                       "ask again shortly"}, status=503)
        partition = partition_for(user_id.encode(), settings.partitions)
        url = owner(app.router.external_topics_metadata(), settings.topic_transactions, partition)
        if url != me:
            if url is None or FORWARDED_BY in request.headers:
                return view.json({"error": f"partition {partition} is moving between workers (a rebalance); "
                                           "ask again shortly"}, status=503)
            return await forward(view, request, url)
        limit = limit_for(limits, user_id, settings.daily_limit)
        return view.json(usage(days, limit, user_id, datetime.now(timezone.utc), zone, on, settings.default_timezone,
                               rules()))

    async def readiness(view: View, request: Request) -> Response:
        """200 once the worker counts (its partitions assigned, its state restored); 503 before,
        and while a rebalance moves partitions."""
        status, body = health(ready())
        return view.json(body, status=status)

    app.page("/readyz", name="readyz")(readiness)
    app.page("/ready", name="ready")(readiness)  # its first name, kept for the scripts and health checks that use it

    @app.page("/healthz")
    async def liveness(view: View, request: Request) -> Response:
        """200 while the worker's event loop answers (it runs the counting, too)."""
        status, body = health()
        return view.json(body, status=status)

    @app.page("/metrics")
    async def prometheus(view: View, request: Request) -> Response:
        body, content_type = exposition(registry)
        return view.bytes(body, headers={"Content-Type": content_type})

    @app.page("/stats")
    async def records(view: View, request: Request) -> Response:
        """The record accounting as JSON (the dashboard and the pipeline sum it over the workers)."""
        return view.json(metrics.as_dict())
