"""The usage view's computation, pure: a user's count on their local day, from the table's values."""

from __future__ import annotations

from datetime import date, datetime, timezone

from paylimit.rules import effective_rules
from stream_app.state import DayCount, encode_day
from stream_app.views import usage


def stored(user: str, on: str, zone: str, count: int) -> tuple[str, bytes]:
    day = DayCount(user, on, zone, 0, 0.0, f"{on}T01:00:00+00:00")
    for i in range(count):
        day.add(f"t{i}", 3, False)
    return f"{user}|{on}", encode_day(day)


def test_today_is_the_users_own_local_day() -> None:
    # 20:00 UTC on the 10th is already the 11th in Kolkata: the 11th's count, in the user's zone
    days = dict([stored("u1", "2026-03-10", "Asia/Kolkata", 2), stored("u1", "2026-03-11", "Asia/Kolkata", 4)])
    got = usage(days, 3, "u1", datetime(2026, 3, 10, 20, 0, tzinfo=timezone.utc), None, None, "UTC")
    assert got == {"user_id": "u1", "local_date": "2026-03-11", "timezone": "Asia/Kolkata", "count": 4,
                   "limit": 3, "remaining": 0, "over_limit": True, "rules": []}


def test_a_given_date_and_a_user_with_nothing_counted() -> None:
    days = dict([stored("u1", "2026-03-10", "Asia/Kolkata", 2)])
    now = datetime(2026, 3, 12, 8, 0, tzinfo=timezone.utc)
    assert usage(days, 3, "u1", now, None, date(2026, 3, 10), "UTC")["count"] == 2
    nothing = usage(days, 3, "u2", now, "America/New_York", None, "UTC")
    assert (nothing["count"], nothing["remaining"], nothing["timezone"], nothing["local_date"]) == (
        0, 3, "America/New_York", "2026-03-12")


def test_each_rule_answers_its_value_limit_remaining_and_window() -> None:
    from tests.test_stream_app.test_tiers import RULES, WINDOWS, Worker, at

    worker = Worker()
    rules = effective_rules({r.name: r for r in [*RULES, *WINDOWS]}, 10)
    for doc in (at(10, 20, amount="250.50"), at(11, 9, amount="100.25", p2p=False), at(11, 10, amount="5.00")):
        worker.feed(doc, rules[1:])
    now = datetime(2026, 3, 11, 6, 0, tzinfo=timezone.utc)  # 11:30 on the 11th in Kolkata
    got = {r["rule"]: r for r in usage(worker.days, 10, "u1", now, None, None, "UTC", rules)["rules"]}
    assert list(got) == ["daily_count", "inr_day", "inr_rolling", "p2p_24h", "p2p_day"]  # vip_movies: vip only
    assert {k: got["daily_count"][k] for k in ("value", "limit", "remaining", "window_start")} == {
        "value": 2, "limit": 10, "remaining": 8, "window_start": "2026-03-11T00:00:00+05:30"}
    assert (got["inr_day"]["value"], got["inr_day"]["remaining"]) == ("105.25", "894.75")  # today's INR
    assert (got["p2p_day"]["value"], got["p2p_day"]["remaining"], got["p2p_day"]["over_limit"]) == (1, 1, False)
    # the P2P window opened at 20:00 on the 10th holds the two P2P payments
    assert (got["p2p_24h"]["value"], got["p2p_24h"]["window_start"], got["p2p_24h"]["window_end"]) == (
        2, "2026-03-10T20:00:00+05:30", "2026-03-11T20:00:00+05:30")
    # the 24 h before now: all three
    assert (got["inr_rolling"]["value"], got["inr_rolling"]["window_end"]) == ("355.75", "2026-03-11T11:30:00+05:30")
