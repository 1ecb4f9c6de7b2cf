"""The worker's HTTP views: a user's usage today in their own zone, and the record accounting."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from typing import Any, Callable

import faust
import orjson
from faust.web import Request, Response, View

from paylimit.contracts import TIMEZONES
from paylimit.settings import Settings
from stream_app.counting import day_key
from stream_app.limits import limit_for
from stream_app.localday import local_day
from stream_app.metrics import Metrics
from stream_app.state import day_count


def usage(days: Any, limit: int, user_id: str, now: datetime, zone: str | None, on: date | None,
          default_zone: str) -> dict[str, Any]:
    """The user's count on their local `on` date (default: today in their zone)."""
    found = None
    if on is None:
        # The user's zone is in their day record; today is one of these dates in any zone.
        utc_today = now.date()
        for candidate in (utc_today - timedelta(days=1), utc_today, utc_today + timedelta(days=1)):
            raw = days.get(day_key(user_id, candidate.isoformat()))
            value = orjson.loads(raw) if raw else None
            if value and local_day(now, zone or value["z"]).date == candidate:
                found = value
        local = local_day(now, found["z"] if found else zone or default_zone)
    else:
        raw = days.get(day_key(user_id, on.isoformat()))
        found = orjson.loads(raw) if raw else None
        local = local_day(now, found["z"] if found else zone or default_zone)
    count = day_count(found) if found else 0
    return {
        "user_id": user_id,
        "local_date": (on or local.date).isoformat(),
        "timezone": found["z"] if found else local.zone,
        "count": count,
        "limit": limit,
        "remaining": max(0, limit - count),
        "over_limit": count > limit,
    }


def register_views(app: faust.App, settings: Settings, days: Any, limits: Any, metrics: Metrics,
                   ready: Callable[[], bool]) -> None:
    @app.page("/users/{user_id}/usage")
    @app.table_route(table=days, match_info="user_id")
    async def user_usage(view: View, request: Request, user_id: str) -> Response:
        if not ready():  # before its state is restored the worker would answer a count of 0
            return view.json({"error": "the worker's state is being restored (a start or a rebalance); "
                                       "ask again shortly"}, status=503)
        zone = request.query.get("timezone")
        if zone is not None and zone not in TIMEZONES:
            return view.json({"error": f"unknown time zone {zone!r}"}, status=400)
        try:
            on = date.fromisoformat(request.query["date"]) if "date" in request.query else None
        except ValueError:
            return view.json({"error": "date must be YYYY-MM-DD"}, status=400)
        limit = limit_for(limits, user_id, settings.daily_limit)
        return view.json(usage(days, limit, user_id, datetime.now(timezone.utc), zone, on, settings.default_timezone))

    @app.page("/metrics")
    async def records(view: View, request: Request) -> Response:
        return view.json(metrics.as_dict())
