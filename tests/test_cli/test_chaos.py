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


def test_a_value_of_format_2_is_read_too() -> None:
    """A worker upgraded in place still has format 2 values in its changelog (every key written)."""
    v2 = {"u": "u1", "d": "2026-03-10", "z": "UTC", "p": 0, "e": 0.0, "f": "2026-03-10T01:00:00+00:00",
          "i": ["t0", "t1", "t2"], "x": "t2", "l": 2, "t": False, "n": 3, "h": "", "r": {}, "v": 2}
    assert crossing_counted(orjson.dumps(v2)) == "t2"
    assert crossing_counted(orjson.dumps({**v2, "n": 4})) is None
