"""The worker's table values in memory (each costs about its JSON size: the 100k-users memory budget) and keys."""

from __future__ import annotations

import tracemalloc

import orjson

from stream_app.batch import encode_value, is_progress_key, progress_key
from stream_app.counting import DayCount, day_key


def test_a_day_value_costs_about_its_json_size() -> None:
    day = DayCount("user-0000001", "2025-01-15", "Asia/Kolkata", 3, 1736965800.0, "2025-01-15T04:00:00+00:00",
                   ids=tuple(f"{i:08d}-6b0d-449b-af03-675a1600a35a" for i in range(10)))
    size = len(orjson.dumps(day.to_json()))
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        kept = [encode_value(day.to_json()) for _ in range(2000)]
        per_value = (tracemalloc.get_traced_memory()[0] - before) / len(kept)
    finally:
        tracemalloc.stop()
    assert orjson.loads(kept[0]) == day.to_json()
    assert per_value < size + 100, (per_value, size)  # bytes object header and list slot, not a 4 KB buffer


def test_a_user_id_like_a_progress_key_is_still_a_day() -> None:
    assert is_progress_key(progress_key(4))
    assert not is_progress_key(day_key("__progress__", "2026-03-10"))
    assert not is_progress_key(day_key("__progress__|7", "2026-03-10"))
