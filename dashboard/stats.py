"""Pure functions behind the dashboard's numbers: rates, latency percentiles, user buckets; and
the bounded map its caches use."""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

NEAR_FRACTION = 0.2  # "near the limit": at most 20 % of the limit remains

K = TypeVar("K")
V = TypeVar("V")


class LRU(OrderedDict[K, V]):
    """A dict that keeps the `capacity` keys set most recently (`PAYLIMIT_DASHBOARD_USERS`)."""

    def __init__(self, capacity: int) -> None:
        super().__init__()
        self.capacity = capacity

    def __setitem__(self, key: K, value: V) -> None:
        super().__setitem__(key, value)
        self.move_to_end(key)
        while len(self) > self.capacity:
            self.popitem(last=False)


def percentile(values: Sequence[float], q: float) -> float | None:
    """The nearest-rank `q` percentile (0 < q <= 100) of `values`, or None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def rate(previous: tuple[float, int] | None, current: tuple[float, int]) -> float | None:
    """Events per second between two (monotonic seconds, running total) samples.

    A total that went down (a worker restarted and its counters with it) gives None, not a
    negative rate.
    """
    if previous is None:
        return None
    dt = current[0] - previous[0]
    dn = current[1] - previous[1]
    if dt <= 0 or dn < 0:
        return None
    return dn / dt


def latencies_ms(notifications: Iterable[dict[str, Any]], now: datetime, window_s: float = 60.0) -> list[float]:
    """delivered_at - detected_at, in ms, of the notifications delivered in the last `window_s`."""
    out = []
    for n in notifications:
        delivered, detected = n["delivered_at_dt"], n["detected_at_dt"]
        if (now - delivered).total_seconds() <= window_s:
            out.append((delivered - detected).total_seconds() * 1000)
    return out


def local_today(zone: str, now: datetime) -> date:
    return now.astimezone(ZoneInfo(zone)).date()


def is_near(usage: dict[str, Any]) -> bool:
    """Not over the limit, yet at most NEAR_FRACTION of it remains (and something was counted)."""
    limit, count = usage["limit"], usage["count"]
    return 0 < count <= limit and usage["remaining"] <= NEAR_FRACTION * limit


def user_buckets(usages: Iterable[dict[str, Any]], top_n: int = 10) -> dict[str, list[dict[str, Any]]]:
    """Split today's usage records into the top users by count, those near the limit and those over."""
    active = [u for u in usages if u["count"] > 0]
    by_count = sorted(active, key=lambda u: (-u["count"], u["user_id"]))
    return {
        "top": by_count[:top_n],
        "near": [u for u in by_count if is_near(u)][:top_n * 5],
        "over": [u for u in by_count if u["count"] > u["limit"]][:top_n * 5],
    }


def default_day(users_per_day: Mapping[str, int], today: date) -> str:
    """The day the user panels show unless one is picked: today when it has activity, else (a
    replayed scenario of past days) the past day with the most active users, else today."""
    past = [d for d, n in users_per_day.items() if n and d <= today.isoformat()]
    if today.isoformat() in past or not past:
        return today.isoformat()
    return max(past, key=lambda d: (users_per_day[d], d))
