"""The oracle on hand-made records: local days, DST days, duplicates, arrival order, lateness, limits."""

from __future__ import annotations

import zlib
from datetime import UTC, date, datetime, timedelta
from typing import Any

import orjson
import pytest

from paylimit.contracts import SentRecord, alert_id_for
from paylimit.settings import Settings, get_settings
from producer_sim.generator import generate
from producer_sim.oracle import day_bounds, expected_outcome
from producer_sim.scenario import load_scenario, scenario_names

NOW = datetime(2025, 6, 1, tzinfo=UTC)
SETTINGS = get_settings(kafka_bootstrap_servers="unused:9092")


class Feed:
    """Builds SentRecords in arrival order on one partition (or the one given)."""

    def __init__(self) -> None:
        self.records: list[SentRecord] = []
        self.offsets: dict[int, int] = {}

    def raw(self, value: str, key: str = "u", partition: int = 0) -> int:
        seq = len(self.records)
        offset = self.offsets.get(partition, 0)
        self.offsets[partition] = offset + 1
        self.records.append(SentRecord(seq=seq, key=key, value=value, partition=partition, offset=offset,
                                       produced_at=NOW))
        return seq

    def tx(self, tid: str, at: str, *, user: str = "u", zone: str | None = "Asia/Kolkata",
           status: str = "succeeded", partition: int = 0, **extra: Any) -> int:
        doc = {"transaction_id": tid, "user_id": user, "amount": "10.00", "currency": "INR", "status": status,
               "occurred_at": at, "timezone": zone, **extra}
        return self.raw(orjson.dumps(doc).decode(), user, partition)

    def run(self, settings: Settings = SETTINGS, overrides: dict[str, int] | None = None, now: datetime = NOW):
        return expected_outcome(self.records, settings, now, overrides)


def over(alerts: list[Any]) -> list[Any]:
    """daily_count's over-limit alerts (the tier these tests are about; the heads-ups are tested below)."""
    return [a for a in alerts if a.tier == "alert"]


def test_ist_midnight_splits_the_day_at_local_midnight() -> None:
    feed = Feed()
    for i in range(10):
        feed.tx(f"a{i}", f"2024-06-14T23:59:{i:02d}+05:30")
    feed.tx("b0", "2024-06-15T00:00:00+05:30")  # 00:00:00 IST: the next day, no alert
    assert over(feed.run().alerts) == []
    feed.tx("a10", "2024-06-14T23:59:59+05:30")  # the 11th of the 14th
    [alert] = over(feed.run().alerts)
    assert alert.local_date == date(2024, 6, 14) and alert.crossing_transaction_id == "a10"
    assert alert.window_start == datetime.fromisoformat("2024-06-14T00:00:00+05:30")
    assert alert.window_end == datetime.fromisoformat("2024-06-15T00:00:00+05:30")
    assert alert.alert_id == alert_id_for("u", date(2024, 6, 14))
    assert alert.first_seen_at == datetime.fromisoformat("2024-06-14T23:59:00+05:30")
    assert alert.count == 11 and alert.limit == 10 and len(alert.transaction_ids) == 11 and not alert.late


def test_utc_midnight_does_not_split_an_indian_day() -> None:
    feed = Feed()
    for i in range(6):
        feed.tx(f"a{i}", f"2024-06-14T23:59:{i:02d}Z")  # 05:29 IST on the 15th
    for i in range(5):
        feed.tx(f"b{i}", f"2024-06-15T00:00:{i:02d}Z", zone=None)  # default zone: Asia/Kolkata
    [alert] = over(feed.run().alerts)
    assert alert.local_date == date(2024, 6, 15) and alert.timezone == "Asia/Kolkata"


@pytest.mark.parametrize(("day", "hours"), [(date(2024, 3, 10), 23), (date(2024, 11, 3), 25)])
def test_new_york_dst_days(day: date, hours: int) -> None:
    start, end = (moment.astimezone(UTC) for moment in day_bounds(day, "America/New_York"))
    assert end - start == timedelta(hours=hours)  # in UTC: same-zone datetimes subtract by wall clock
    feed = Feed()
    feed.tx("first", start.isoformat(), zone="America/New_York")
    for i in range(9):
        feed.tx(f"mid{i}", (start + timedelta(hours=2 + i)).isoformat(), zone="America/New_York")
    feed.tx("last", (end - timedelta(seconds=1)).isoformat(), zone="America/New_York")
    feed.tx("next-day", end.isoformat(), zone="America/New_York")
    [alert] = over(feed.run().alerts)
    assert alert.local_date == day and alert.crossing_transaction_id == "last"
    assert alert.window_end.astimezone(UTC) - alert.window_start.astimezone(UTC) == timedelta(hours=hours)
    assert alert.window_start.utcoffset() != alert.window_end.utcoffset()


def test_a_duplicate_counts_once() -> None:
    feed = Feed()
    for i in range(10):
        feed.tx(f"t{i}", f"2024-06-14T10:00:{i:02d}+05:30")
    feed.tx("t3", "2024-06-14T10:00:03+05:30")
    outcome = feed.run()
    assert over(outcome.alerts) == [] and outcome.duplicates == 1 and outcome.counted == 10
    feed.tx("t10", "2024-06-14T11:00:00+05:30")
    feed.tx("t10", "2024-06-14T11:00:00+05:30")  # the crossing one, re-delivered: still one alert
    [alert] = over(feed.run().alerts)
    assert alert.crossing_transaction_id == "t10" and alert.transaction_ids[-1] == "t10"


def test_failed_and_declined_do_not_count() -> None:
    feed = Feed()
    for i in range(10):
        feed.tx(f"t{i}", f"2024-06-14T10:00:{i:02d}+05:30")
    feed.tx("f", "2024-06-14T11:00:00+05:30", status="failed")
    feed.tx("d", "2024-06-14T11:00:01+05:30", status="declined")
    assert over(feed.run().alerts) == []


def test_arrival_order_decides_the_crossing_transaction() -> None:
    feed = Feed()
    for i in range(10):
        feed.tx(f"t{i}", f"2024-06-14T12:00:{i:02d}+05:30")
    feed.tx("arrives-11th", "2024-06-14T20:00:00+05:30")
    feed.tx("dated-earlier", "2024-06-14T01:00:00+05:30")
    [alert] = over(feed.run().alerts)
    assert alert.crossing_transaction_id == "arrives-11th"
    assert alert.first_seen_at == datetime.fromisoformat("2024-06-14T12:00:00+05:30")


def test_partitions_keep_their_own_stream_time() -> None:
    feed = Feed()
    feed.tx("far", "2024-06-20T12:00:00+05:30", user="other", partition=1)
    feed.tx("old", "2024-06-14T12:00:00+05:30", partition=0)
    assert feed.run().dead_letters == {}


def test_a_late_event_within_retention_alerts_with_late_true() -> None:
    feed = Feed()
    for i in range(10):
        feed.tx(f"t{i}", f"2024-06-14T12:00:{i:02d}+05:30")
    feed.tx("next", "2024-06-15T06:00:00+05:30")  # stream time passes the 14th's end
    feed.tx("late", "2024-06-14T23:00:00+05:30")
    [alert] = over(feed.run().alerts)
    assert alert.crossing_transaction_id == "late" and alert.late is True
    assert alert.local_date == date(2024, 6, 14)


def test_past_the_retention_is_too_late_and_does_not_move_stream_time() -> None:
    feed = Feed()
    feed.tx("anchor", "2024-06-17T00:00:00+05:30")  # exactly the 14th's end + 2 days
    gone = feed.tx("gone", "2024-06-14T23:59:59+05:30")
    kept = feed.tx("kept", "2024-06-15T10:00:00+05:30")  # the 15th's end + 2d is still ahead
    outcome = feed.run()
    assert {s: d.error for s, d in outcome.dead_letters.items()} == {gone: "too_late"}
    assert kept not in outcome.dead_letters


def test_too_far_in_future_against_now_and_skew() -> None:
    feed = Feed()
    future = feed.tx("future", "2099-01-01T00:00:00Z")
    after = feed.tx("after", "2024-06-14T10:00:00+05:30")  # the future one did not move stream time
    within = feed.tx("skew", (NOW + timedelta(minutes=59)).isoformat())
    outcome = feed.run()
    assert {s: d.error for s, d in outcome.dead_letters.items()} == {future: "too_far_in_future"}
    assert within not in outcome.dead_letters and after not in outcome.dead_letters


def test_malformed_records_are_dead_letters_with_their_class() -> None:
    feed = Feed()
    bad_json = feed.raw("{not json")
    missing = feed.raw('{"transaction_id": "x", "user_id": "u", "currency": "INR", "status": "succeeded", '
                       '"occurred_at": "2024-06-14T10:00:00Z"}')
    negative = feed.tx("n", "2024-06-14T10:00:00Z", amount="-1")
    outcome = feed.run()
    assert {s: d.error for s, d in outcome.dead_letters.items()} == {
        bad_json: "invalid_json", missing: "missing_field", negative: "invalid_amount"}
    assert outcome.dead_letters[missing].offset == 1 and outcome.dead_letters[missing].partition == 0


def test_per_user_override_and_limit_zero() -> None:
    feed = Feed()
    for i in range(5):
        feed.tx(f"s{i}", f"2024-06-14T10:00:{i:02d}+05:30", user="strict")
    feed.tx("z0", "2024-06-14T10:00:00+05:30", user="zero", partition=1)
    feed.tx("z1", "2024-06-14T10:00:01+05:30", user="zero", partition=1)
    alerts = {a.user_id: a for a in over(feed.run(overrides={"strict": 3, "zero": 0}).alerts)}
    assert alerts["strict"].crossing_transaction_id == "s3" and alerts["strict"].limit == 3
    assert alerts["strict"].count == 4
    assert alerts["zero"].crossing_transaction_id == "z0" and alerts["zero"].count == 1
    assert alerts["zero"].transaction_ids == ["z0"]


def test_settings_drive_the_default_limit_and_zone() -> None:
    feed = Feed()
    for i in range(3):
        feed.tx(f"t{i}", f"2024-06-14T23:30:0{i}Z", zone=None)
    [alert] = over(feed.run(settings=get_settings(kafka_bootstrap_servers="x:1", daily_limit=2, default_timezone="UTC")).alerts)
    assert alert.timezone == "UTC" and alert.local_date == date(2024, 6, 14)


@pytest.mark.parametrize("name", scenario_names())
def test_scenarios_realise_their_intent(name: str) -> None:
    """Every record the generator meant for a dead letter gets exactly that one, and no other does."""
    plan = generate(load_scenario(name), 11)
    sent = [SentRecord(seq=i, key=r.key, value=r.value.decode(), partition=zlib.crc32(r.key.encode()) % 6,
                       offset=i, produced_at=NOW, expect_error=r.expect_error)
            for i, r in enumerate(plan.records) if r.key]
    outcome = expected_outcome(sent, SETTINGS, datetime.now(UTC), plan.overrides)
    assert {s: d.error for s, d in outcome.dead_letters.items()} == \
           {r.seq: r.expect_error for r in sent if r.expect_error}
    if name not in ("under_limit",):
        assert outcome.alerts
    if name == "out_of_order_late":
        assert any(a.late for a in outcome.alerts)
