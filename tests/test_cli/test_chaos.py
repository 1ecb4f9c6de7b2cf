"""How `paylimit chaos` tells, from a stored day, that the crossing was counted in that very write."""

from __future__ import annotations

import orjson

from paylimit.cli.chaos import crossing_counted
from stream_app.state import DayCount, encode_day


def stored_after(ids: list[str], limit: int) -> bytes:
    day = DayCount("u1", "2026-03-10", "Asia/Kolkata", 0, 0.0, "2026-03-10T01:00:00+05:30")
    for tid in ids:
        day.add(tid, limit, False)
    return encode_day(day)


def test_the_write_that_counts_the_crossing_names_it() -> None:
    assert crossing_counted(stored_after(["t0", "t1", "t2"], limit=2)) == "t2"


def test_other_values_name_none() -> None:
    assert crossing_counted(stored_after(["t0", "t1"], limit=2)) is None  # not over the limit yet
    assert crossing_counted(stored_after(["t0", "t1", "t2", "t3"], limit=2)) is None  # counted after the crossing
    assert crossing_counted(orjson.dumps({"o": 5, "t": None})) is None  # a partition's progress
