"""The dashboard's pure numbers: percentiles, rates, latency window, user buckets."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from dashboard import stats
from dashboard.sources import add_metrics


def usage(user: str, count: int, limit: int = 10) -> dict:
    return {"user_id": user, "count": count, "limit": limit, "remaining": max(0, limit - count)}


def test_percentile_nearest_rank() -> None:
    assert stats.percentile([], 50) is None
    assert stats.percentile([5.0], 99) == 5.0
    values = [float(v) for v in range(1, 101)]
    assert stats.percentile(values, 50) == 50.0
    assert stats.percentile(values, 99) == 99.0


def test_rate_ignores_counters_that_went_back() -> None:
    assert stats.rate(None, (1.0, 10)) is None
    assert stats.rate((1.0, 10), (3.0, 30)) == 10.0
    assert stats.rate((1.0, 30), (2.0, 5)) is None  # a worker restarted


def test_latency_only_last_minute() -> None:
    now = datetime(2026, 1, 1, 12, tzinfo=timezone.utc)
    recent = {"delivered_at_dt": now - timedelta(seconds=5), "detected_at_dt": now - timedelta(seconds=5.25)}
    old = {"delivered_at_dt": now - timedelta(seconds=90), "detected_at_dt": now - timedelta(seconds=91)}
    assert stats.latencies_ms([recent, old], now) == [250.0]


def test_user_buckets() -> None:
    users = [usage("a", 3), usage("b", 8), usage("c", 10), usage("d", 11), usage("e", 0)]
    buckets = stats.user_buckets(users, top_n=3)
    assert [u["user_id"] for u in buckets["top"]] == ["d", "c", "b"]
    assert [u["user_id"] for u in buckets["near"]] == ["c", "b"]  # 2 of 10 left is within 20 %
    assert [u["user_id"] for u in buckets["over"]] == ["d"]


def test_metrics_summed_over_workers() -> None:
    total: dict = {}
    add_metrics(total, {"consumed": 5, "dead_lettered_by_error": {"invalid_json": 1}})
    add_metrics(total, {"consumed": 7, "dead_lettered_by_error": {"invalid_json": 2, "too_late": 1}})
    assert total == {"consumed": 12, "dead_lettered_by_error": {"invalid_json": 3, "too_late": 1}}


def test_default_day_is_today_or_the_latest_past_day() -> None:
    from datetime import date

    today = date(2026, 3, 10)
    assert stats.default_day({}, today) == "2026-03-10"
    assert stats.default_day({"2026-03-09": 50, "2026-03-10": 1}, today) == "2026-03-10"
    replay = {"2025-01-14": 150, "2025-01-15": 160, "2025-01-16": 3, "2026-03-11": 400}
    assert stats.default_day(replay, today) == "2025-01-15"


def test_succeeded_local_date() -> None:
    from dashboard.offsets import succeeded_local_date

    tx = b'{"status": "succeeded", "occurred_at": "2025-01-14T20:00:00+00:00", "timezone": "Asia/Kolkata"}'
    assert succeeded_local_date(tx, "UTC") == "2025-01-15"
    assert succeeded_local_date(tx.replace(b', "timezone": "Asia/Kolkata"', b""), "UTC") == "2025-01-14"
    assert succeeded_local_date(tx.replace(b"succeeded", b"declined"), "UTC") is None
    assert succeeded_local_date(b"not json", "UTC") is None
    assert succeeded_local_date(tx.replace(b"Asia/Kolkata", b"Mars/Base"), "UTC") is None
