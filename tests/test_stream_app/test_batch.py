"""The worker's table values in memory (each costs about its JSON size: the 100k-users memory budget),
hot days kept decoded, and keys."""

from __future__ import annotations

import time
import tracemalloc

import orjson


from stream_app.batch import LIVE_AFTER, LIVE_IDLE, StagedWrites, Days, is_progress_key, progress_key
from stream_app.counting import day_key
from stream_app.state import DayCount, day_count, decode_day, encode_day


def test_a_day_value_costs_about_its_json_size() -> None:
    day = DayCount("user-0000001", "2025-01-15", "Asia/Kolkata", 3, 1736965800.0, "2025-01-15T04:00:00+00:00",
                   count=10, head=[f"{i:08d}-6b0d-449b-af03-675a1600a35a" for i in range(10)])
    size = len(encode_day(day))
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        kept = [encode_day(day) for _ in range(2000)]
        per_value = (tracemalloc.get_traced_memory()[0] - before) / len(kept)
    finally:
        tracemalloc.stop()
    assert decode_day("user-0000001|2025-01-15", kept[0]).head == day.head
    assert per_value < size + 100, (per_value, size)  # bytes object header and list slot, not a 4 KB buffer


def test_a_user_id_like_a_progress_key_is_still_a_day() -> None:
    assert is_progress_key(progress_key(4))
    assert not is_progress_key(day_key("__progress__", "2026-03-10"))
    assert not is_progress_key(day_key("__progress__|7", "2026-03-10"))


def new_day(count: int) -> DayCount:
    day = DayCount("u", "2026-03-10", "UTC", 0, 1773187200.0, "2026-03-10T01:00:00+00:00")
    for i in range(count):
        day.add(f"t{i}", 10, False)
    return day


def test_a_hot_day_stays_decoded_until_the_changelog_encodes_it() -> None:
    days = Days({})
    small, hot = new_day(5), new_day(LIVE_AFTER + 1)
    days.put("small|2026-03-10", small)
    days.put("hot|2026-03-10", hot)
    assert days.day("small|2026-03-10") is not small  # decoded from its bytes each batch
    assert days.day("hot|2026-03-10") is hot
    hot.add("one-more", 10, False)  # counted in place: the bytes are behind until encoded
    assert day_count(orjson.loads(days.values["hot|2026-03-10"])) == LIVE_AFTER + 1
    assert day_count(orjson.loads(days.encoded("hot|2026-03-10") or b"")) == LIVE_AFTER + 2
    assert days.day("hot|2026-03-10") is hot
    days.forget_idle()
    assert days.day("hot|2026-03-10") is hot  # counted a moment ago
    days.live["hot|2026-03-10"] = (*days.live["hot|2026-03-10"][:2], time.monotonic() - LIVE_IDLE - 1)
    days.forget_idle()  # idle: its bytes are the day
    again = days.day("hot|2026-03-10")
    assert again is not hot and again is not None and again.count == LIVE_AFTER + 2


def test_a_restored_value_replaces_the_decoded_day() -> None:
    days = Days({})
    days.put("hot|2026-03-10", new_day(LIVE_AFTER + 1))
    days.values["hot|2026-03-10"] = encode_day(new_day(3))  # what a restore does
    restored = StagedWrites(days).day("hot|2026-03-10")
    assert restored is not None and restored.count == 3
    days.put("hot|2026-03-10", None)
    assert StagedWrites(days).day("hot|2026-03-10") is None and not days.live
