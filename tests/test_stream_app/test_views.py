"""The usage view's computation, pure: a user's count on their local day, from the table's values."""

from __future__ import annotations

from datetime import date, datetime, timezone

from stream_app.batch import encode_value
from stream_app.state import DayCount
from stream_app.views import usage


def stored(user: str, on: str, zone: str, count: int) -> tuple[str, bytes]:
    day = DayCount(user, on, zone, 0, 0.0, f"{on}T01:00:00+00:00")
    for i in range(count):
        day.add(f"t{i}", 3, False)
    return f"{user}|{on}", encode_value(day.to_json())


def test_today_is_the_users_own_local_day() -> None:
    # 20:00 UTC on the 10th is already the 11th in Kolkata: the 11th's count, in the user's zone
    days = dict([stored("u1", "2026-03-10", "Asia/Kolkata", 2), stored("u1", "2026-03-11", "Asia/Kolkata", 4)])
    got = usage(days, 3, "u1", datetime(2026, 3, 10, 20, 0, tzinfo=timezone.utc), None, None, "UTC")
    assert got == {"user_id": "u1", "local_date": "2026-03-11", "timezone": "Asia/Kolkata", "count": 4,
                   "limit": 3, "remaining": 0, "over_limit": True}


def test_a_given_date_and_a_user_with_nothing_counted() -> None:
    days = dict([stored("u1", "2026-03-10", "Asia/Kolkata", 2)])
    now = datetime(2026, 3, 12, 8, 0, tzinfo=timezone.utc)
    assert usage(days, 3, "u1", now, None, date(2026, 3, 10), "UTC")["count"] == 2
    nothing = usage(days, 3, "u2", now, "America/New_York", None, "UTC")
    assert (nothing["count"], nothing["remaining"], nothing["timezone"], nothing["local_date"]) == (
        0, 3, "America/New_York", "2026-03-12")
