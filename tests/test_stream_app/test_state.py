"""The day value and its codec: exact up to the crossing, a window of hashes after it, bounded in
size whatever the count, and the format before it still read."""

from __future__ import annotations

from decimal import Decimal

import orjson

from paylimit.contracts import MAX_DAILY_LIMIT, TEXT_MAX
from stream_app.state import MAX_ENTRIES, VALUE_MAX, WINDOW, DayCount, Fired, RuleDay, day_count, decode_day, encode_day


KEY = "u1|2026-03-10"


def new_day(user: str = "u1") -> DayCount:
    return DayCount(user, "2026-03-10", "Asia/Kolkata", 2, 1773167400.0, "2026-03-10T10:00:00+05:30")


def count(day: DayCount, ids: list[str], limit: int = 10) -> list[str]:
    """Feeds ids the way `decide` does; returns those taken for duplicates."""
    duplicates = []
    for tid in ids:
        if day.holds(tid):
            duplicates.append(tid)
        else:
            day.add(tid, limit, False)
    return duplicates


def test_a_day_survives_its_encoding_before_and_after_the_crossing() -> None:
    day = new_day()
    count(day, [f"t{i}" for i in range(5)])
    again = decode_day(KEY, encode_day(day))
    assert (again.count, again.head, again.crossing) == (5, [f"t{i}" for i in range(5)], None)
    count(day, [f"t{i}" for i in range(5, 40)])
    again = decode_day(KEY, encode_day(day))
    assert encode_day(again) == encode_day(day)
    assert (again.count, again.crossing, again.limit, len(again.head)) == (40, "t10", 10, 11)
    assert count(again, ["t3", "t10", "t39", "t40"]) == ["t3", "t10", "t39"]  # t40 is new


def test_the_value_stays_bounded_and_the_count_exact_at_100000() -> None:
    day = new_day()
    ids = [f"{i:08d}-6b0d-449b-af03-675a1600a35a" for i in range(100_000)]
    assert count(day, ids) == []
    raw = encode_day(day)
    assert day.count == 100_000 and len(raw) < 300_000  # 11 ids in full, 20,000 hashes
    again = decode_day(KEY, raw)
    # the documented fallback: the ids up to the crossing and the last WINDOW are recognised,
    # an older one is counted again
    recent, older = ids[-WINDOW:], ids[11:-WINDOW]
    assert count(again, ids[:11] + recent) == ids[:11] + recent
    assert count(again, older[:3]) == []
    assert again.count == 100_003


def test_no_value_reaches_the_bound_whatever_its_ids() -> None:
    """The largest day there can be: the highest limit, ids and user id of the longest text JSON
    escapes worst (6 bytes a character), crossed, with its window full."""
    worst = "\x01" * TEXT_MAX
    day = DayCount(worst, "2026-03-10", "America/Argentina/ComodRivadavia", 2, 1773167400.0,
                   "2026-03-10T10:00:00.123456+05:30")
    ids = [f"{i:06d}{worst}"[:TEXT_MAX] for i in range(MAX_DAILY_LIMIT + 1 + WINDOW + 10)]
    count(day, ids, limit=MAX_DAILY_LIMIT)
    assert day.crossing == ids[MAX_DAILY_LIMIT] and len(day.recent) == WINDOW
    size = len(encode_day(day))
    assert 0.9 * VALUE_MAX < size < VALUE_MAX < 1024 * 1024, size


def test_a_value_the_version_before_wrote_is_the_day_it_describes() -> None:
    """Before, a day held every counted id in "i" (a worker upgraded in place restores those)."""
    ids = [f"id-{i}" for i in range(30)]
    old = {"u": "u1", "d": "2026-03-10", "z": "Asia/Kolkata", "p": 2, "e": 1773167400.0,
           "f": "2026-03-10T10:00:00+05:30", "i": ids, "x": "id-10", "l": 10, "t": False}
    assert day_count(old) == 30
    day = decode_day(KEY, orjson.dumps(old))
    assert (day.count, day.head, day.crossing, day.limit, day.late) == (30, ids[:11], "id-10", 10, False)
    assert count(day, ids + ["id-30"]) == ids and day.count == 31  # every old id is still a duplicate
    new = orjson.loads(encode_day(day))
    assert new["v"] == 3 and day_count(new) == 31
    under = {**old, "i": ids[:4], "x": None, "l": None}
    day = decode_day(KEY, orjson.dumps(under))
    assert (day.count, day.head, day.crossing) == (4, ids[:4], None)


def test_a_days_rules_round_trip_through_the_codec_and_a_window_rules_times_stay_bounded() -> None:
    day = DayCount("u1", "2026-03-10", "UTC", 0, 0.0, "2026-03-10T01:00:00+00:00")
    day.rules["inr"] = RuleDay("amount", 2, Decimal("100.05"), "2026-03-10T01:00:00+00:00",
                               {"warn": Fired("t1", 2, "100.05", "120", False, "amount", None, 5)})
    rolling = day.rules["p2p"] = RuleDay("amount", window="rolling_24h")
    for i in range(MAX_ENTRIES + 3):  # the last four merged into the latest kept time
        rolling.remember(1_000_000 * i, Decimal("0.01"))
    rolling.opens.append(7)
    again = decode_day(KEY, encode_day(day))
    assert again.rules["inr"].stored() == day.rules["inr"].stored()
    assert again.rules["inr"].fired["warn"] == Fired("t1", 2, "100.05", "120", False, "amount", None, 5)
    kept = again.rules["p2p"]
    assert (kept.window, kept.opens, len(kept.times)) == ("rolling_24h", [7], MAX_ENTRIES)
    assert kept.times[-1] == 1_000_000 * (MAX_ENTRIES + 2) and kept.entries()[-1][1] == Decimal("0.04")
    assert sum(a for _, a in kept.entries()) == Decimal("0.01") * (MAX_ENTRIES + 3)  # never under-counted


def held(day: DayCount) -> tuple:
    """Everything a day holds, its rules as they would be stored."""
    return (day.user_id, day.date, day.zone, day.partition, day.end, day.first_seen_at, day.count, day.head,
            list(day.recent), day.crossing, day.limit, day.late, {n: r.stored() for n, r in day.rules.items()})


#: a typical day of the benchmark (two ids, under its limit) as format 2 wrote it
BENCH_DAY_V2 = (b'{"u":"user-0007602","d":"2026-12-04","z":"Asia/Kolkata","p":4,"e":1796409000.0,'
                b'"f":"2026-12-04T05:07:22.552000+00:00","i":["11e20b8f-6b0d-449b-af03-675a1600a35a",'
                b'"e34870ac-f5f8-4b32-9449-2815c207bf73"],"x":null,"l":null,"t":false,"n":2,"h":"",'
                b'"r":{"daily_count":{"n":2,"s":"2","f":"2026-12-04T05:07:22.552000+00:00","m":"count","x":{}}},"v":2}')


def test_a_format_2_value_is_the_day_it_was_and_format_3_stores_it_in_half_the_bytes() -> None:
    key = "user-0007602|2026-12-04"
    day = decode_day(key, BENCH_DAY_V2)
    assert held(day) == ("user-0007602", "2026-12-04", "Asia/Kolkata", 4, 1796409000.0,
                         "2026-12-04T05:07:22.552000+00:00", 2, ["11e20b8f-6b0d-449b-af03-675a1600a35a",
                                                                 "e34870ac-f5f8-4b32-9449-2815c207bf73"],
                         [], None, None, False, {"daily_count": day.rules["daily_count"].stored()})
    raw = encode_day(day)
    # what the key, the defaults and the day itself say is left out: user, date, daily_count's RuleDay...
    assert orjson.loads(raw) == {"v": 3, "z": "Asia/Kolkata", "p": 4, "e": 1796409000.0,
                                 "f": "2026-12-04T05:07:22.552000", "i": ["11e20b8f-6b0d-449b-af03-675a1600a35a", "e34870ac-f5f8-4b32-9449-2815c207bf73"]}
    assert (len(BENCH_DAY_V2), len(raw)) == (343, 166)
    assert held(decode_day(key, raw)) == held(day)


def test_a_crossed_day_with_rules_fired_is_the_same_day_from_format_2_and_format_3() -> None:
    day = new_day()
    count(day, [f"t{i}" for i in range(14)])  # crossed at t10, three hashes after it
    day.rules["daily_count"] = RuleDay("count", 14, Decimal(14), day.first_seen_at,
                                       {"warn": Fired("t7", 8, "8", "10", False, "count", None, 5)})
    day.rules["inr"] = RuleDay("amount", 2, Decimal("100.05"), "2026-03-10T11:00:00+05:30")
    v2 = {"u": "u1", "d": "2026-03-10", **orjson.loads(encode_day(day)), "v": 2}
    v2["f"] = day.first_seen_at
    from_v2 = decode_day(KEY, orjson.dumps(v2))
    assert held(from_v2) == held(day) == held(decode_day(KEY, encode_day(day)))
    assert list(from_v2.rules) == ["daily_count", "inr"] and from_v2.holds("t12") and from_v2.count == 14


def test_format_3_leaves_daily_counts_rule_day_out_only_when_the_day_implies_it() -> None:
    day = DayCount("u1", "2026-03-10", "UTC", 0, 0.0, "2026-03-10T01:00:00+00:00")
    day.add("t0", 10, False)
    day.rules["daily_count"] = RuleDay("count", 1, Decimal(1), day.first_seen_at)
    assert "r" not in orjson.loads(encode_day(day))
    for other in (RuleDay("count", 1, Decimal(1), "2026-03-10T02:00:00+00:00"),  # counted from later on
                  RuleDay("count", 1, Decimal("1.0"), day.first_seen_at)):
        day.rules = {"inr": RuleDay("amount", 1, Decimal(5), day.first_seen_at), "daily_count": other}
        again = decode_day(KEY, encode_day(day))
        assert held(again) == held(day) and list(again.rules) == ["inr", "daily_count"]
        day.rules = {"daily_count": other}
        assert held(decode_day(KEY, encode_day(day))) == held(day)
    day.rules = {}  # a day counted before rules existed: the RuleDay the next record would make
    assert decode_day(KEY, encode_day(day)).rules["daily_count"].stored() == RuleDay(
        "count", 1, Decimal(1), day.first_seen_at).stored()
