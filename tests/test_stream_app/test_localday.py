"""Local calendar days: IST, New York DST days both ways, midnight edges."""

from datetime import date, datetime, timedelta, timezone

import pytest

from stream_app.localday import day_bounds, local_day

UTC = timezone.utc


@pytest.mark.parametrize(
    ("instant", "zone", "expected"),
    [
        # IST is UTC+05:30: a UTC-day window would split the Indian day at 05:30
        ("2026-03-09T18:29:59+00:00", "Asia/Kolkata", date(2026, 3, 9)),  # 23:59:59 IST
        ("2026-03-09T18:30:00+00:00", "Asia/Kolkata", date(2026, 3, 10)),  # 00:00:00 IST
        ("2026-03-10T00:00:00+00:00", "Asia/Kolkata", date(2026, 3, 10)),  # 05:30 IST, same day
        ("2026-03-08T04:59:59+00:00", "America/New_York", date(2026, 3, 7)),  # 23:59:59 EST
        ("2026-03-08T05:00:00+00:00", "America/New_York", date(2026, 3, 8)),  # spring-forward day
        ("2026-03-09T03:59:59+00:00", "America/New_York", date(2026, 3, 8)),  # 23:59:59 EDT
        ("2026-03-09T04:00:00+00:00", "America/New_York", date(2026, 3, 9)),
        ("2026-11-01T05:30:00+00:00", "America/New_York", date(2026, 11, 1)),  # 01:30 EDT (first)
        ("2026-11-01T06:30:00+00:00", "America/New_York", date(2026, 11, 1)),  # 01:30 EST (repeat)
        ("2026-11-02T04:59:59+00:00", "America/New_York", date(2026, 11, 1)),  # 23:59:59 EST
    ],
)
def test_local_date(instant: str, zone: str, expected: date) -> None:
    assert local_day(datetime.fromisoformat(instant), zone).date == expected


def test_dst_days_last_23_and_25_hours() -> None:
    start, end = day_bounds(date(2026, 3, 8), "America/New_York")
    assert end.astimezone(UTC) - start.astimezone(UTC) == timedelta(hours=23)
    start, end = day_bounds(date(2026, 11, 1), "America/New_York")
    assert end.astimezone(UTC) - start.astimezone(UTC) == timedelta(hours=25)


def test_bounds_are_local_midnights_with_the_zone_offset() -> None:
    day = local_day(datetime(2026, 3, 9, 20, 0, tzinfo=UTC), "Asia/Kolkata")
    assert day.start.isoformat() == "2026-03-10T00:00:00+05:30"
    assert day.end.isoformat() == "2026-03-11T00:00:00+05:30"
    assert day.start <= datetime(2026, 3, 9, 20, 0, tzinfo=UTC) < day.end
