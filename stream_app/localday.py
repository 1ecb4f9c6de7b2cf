"""The calendar day of an event in the account's own time zone, and that day's bounds.

Not a UTC day and not a rolling 24 h: the local date of `occurred_at` in the zone, with the day
starting and ending at local midnight (so a daylight-saving day lasts 23 or 25 hours).
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from functools import lru_cache
from typing import NamedTuple
from zoneinfo import ZoneInfo


class LocalDay(NamedTuple):
    date: date
    zone: str
    start: datetime  # local midnight starting the day (aware, in the zone)
    end: datetime  # the next local midnight
    key: str  # the date as YYYY-MM-DD
    end_at: float  # `end` in epoch seconds
    start_at: float  # `start` in epoch seconds


@lru_cache(maxsize=1024)
def zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def local_midnight(day: date, tz: ZoneInfo) -> datetime:
    return datetime.combine(day, time(0), tzinfo=tz)


def day_bounds(day: date, zone_name: str) -> tuple[datetime, datetime]:
    """Local midnight starting `day` and the next one, in the zone."""
    local = _local_day(day, zone_name)
    return local.start, local.end


@lru_cache(maxsize=65536)
def _local_day(day: date, zone_name: str) -> LocalDay:
    tz = zone(zone_name)
    end = local_midnight(day + timedelta(days=1), tz)
    start = local_midnight(day, tz)
    return LocalDay(day, zone_name, start, end, day.isoformat(), end.timestamp(), start.timestamp())


_last: dict[str, LocalDay] = {}  # zone -> the day last asked for: most records fall on it


def local_day(occurred_at: datetime, zone_name: str) -> LocalDay:
    """The local calendar day `occurred_at` falls on in `zone_name`."""
    last, at = _last.get(zone_name), occurred_at.timestamp()
    if last is not None and last.start_at <= at < last.end_at:
        return last
    day = _last[zone_name] = _local_day(occurred_at.astimezone(zone(zone_name)).date(), zone_name)
    return day
