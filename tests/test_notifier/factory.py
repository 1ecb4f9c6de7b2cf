"""Alerts and notifications for the notifier, verify and CLI tests."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

from paylimit.contracts import ExpectedAlert, LimitAlert, Notification, alert_id_for


def make_alert(user: str = "u1", day: date = date(2025, 3, 10), zone: str = "Asia/Kolkata", limit: int = 10,
               **overrides: Any) -> LimitAlert:
    tz = ZoneInfo(zone)
    start = datetime(day.year, day.month, day.day, tzinfo=tz)
    ids = [f"{user}-{day}-tx{i}" for i in range(limit + 1)]
    values: dict[str, Any] = dict(
        alert_id=alert_id_for(user, day), user_id=user, local_date=day, timezone=zone, limit=limit, count=limit + 1,
        crossing_transaction_id=ids[-1], transaction_ids=ids, window_start=start,
        window_end=datetime.combine(day + timedelta(days=1), datetime.min.time(), tzinfo=tz),
        first_seen_at=start + timedelta(hours=9), late=False, detected_at=datetime.now(timezone.utc),
    )
    values.update(overrides)
    return LimitAlert(**values)


def expected_of(alert: LimitAlert) -> ExpectedAlert:
    return ExpectedAlert.model_validate(alert.model_dump())


def notification_of(alert: LimitAlert, **overrides: Any) -> Notification:
    return Notification(**{**alert.model_dump(), "delivered_at": datetime.now(timezone.utc), **overrides})
