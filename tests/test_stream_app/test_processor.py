"""The worker's core without faust: plain lists of records in, on the real broker: counted once,
outputs and state written in their order, the group's offsets from the state."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any, Callable, Sequence

import orjson
import pytest
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from paylimit.settings import Settings
from stream_app.batch import Days, progress_key
from stream_app.changelog import Changelog
from stream_app.processor import Processor
from stream_app.reader import Record
from stream_app.state import decode_day, decode_progress
from tests.e2e.harness import produce
from tests.test_stream_app.test_hot_user import read_topic

pytestmark = pytest.mark.integration


class StaticGroup:
    """A consumer group whose assignment never moves; its commits go to the broker, as the
    worker's group's do."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def ready(self) -> bool:
        return True

    def assigned(self) -> list[int]:
        return list(range(self.settings.partitions))

    def generation(self) -> int:
        return 1

    def pause(self, partitions: Sequence[int]) -> None:
        pass

    def stopping(self) -> bool:
        return False

    def rebalancing(self) -> bool:
        return False

    async def commit(self, offsets: dict[int, int]) -> bool:
        consumer = Consumer(self.settings.kafka_client_config(**{"group.id": self.settings.app_id}))
        try:
            consumer.commit(offsets=[TopicPartition(self.settings.topic_transactions, p, o) for p, o in offsets.items()],
                            asynchronous=False)
            return True
        finally:
            consumer.close()


def committed(settings: Settings, partition: int) -> int:
    consumer = Consumer(settings.kafka_client_config(**{"group.id": settings.app_id}))
    try:
        return consumer.committed([TopicPartition(settings.topic_transactions, partition)], timeout=30)[0].offset
    finally:
        consumer.close()


def changelog_topic(settings: Settings) -> str:
    topic = f"{settings.app_id}-days-changelog"
    admin = AdminClient(settings.kafka_client_config())
    for created in admin.create_topics([NewTopic(topic, settings.partitions, 1)]).values():
        created.result(timeout=30)
    return topic


def transaction(tid: str, at: str, user: str = "u1") -> bytes:
    return json.dumps({"transaction_id": tid, "user_id": user, "amount": "12.50", "currency": "INR",
                       "status": "succeeded", "occurred_at": at}).encode()


def core(settings: Settings, values: dict[str, Any], group: StaticGroup | None = None) -> Processor:
    days = Days(values)
    return Processor(settings, group or StaticGroup(settings), days, Changelog(changelog_topic(settings), days), {})


async def count(processor: Processor, records: Sequence[Record]) -> None:
    """What `Processor.run` does with a batch it read."""
    async with processor.lock:
        await processor.count(records)


def test_records_are_counted_once_and_written_in_order(make_settings: Callable[..., Settings]) -> None:
    settings = make_settings(partitions=2, daily_limit=2)
    values: dict[str, Any] = {}
    processor = core(settings, values)
    records = [Record(settings.topic_transactions, 1, i, b"u1", transaction(f"t{i}", f"2026-03-10T1{i}:00:00+05:30"))
               for i in range(4)]
    records.append(Record(settings.topic_transactions, 1, 4, b"u1", b"{not json"))

    async def run() -> None:
        await count(processor, records)
        await count(processor, records)  # read again: already in the state
        await processor.commit()

    asyncio.run(run())
    metrics = processor.metrics.as_dict()
    assert (metrics["consumed"], metrics["counted"], metrics["dead_lettered"], metrics["replayed"]) == (5, 4, 1, 5)
    alerts = [orjson.loads(v or b"") for _, v in read_topic(settings, settings.topic_alerts)]
    # daily_count's heads-up at 80 % of 2 (the 2nd), then its alert over the limit (the 3rd)
    assert [(a["crossing_transaction_id"], a["count"], a["tier"]) for a in alerts] == [("t1", 2, "warn"), ("t2", 3, "alert")]
    assert [orjson.loads(v or b"")["error"] for _, v in read_topic(settings, settings.topic_dlq)] == ["invalid_json"]
    # the day, then the progress that covers it, on the records' partition; then the group's offset
    written = [(orjson.loads(k or b""), v) for k, v in read_topic(settings, f"{settings.app_id}-days-changelog")]
    assert [k for k, _ in written] == ["u1|2026-03-10", progress_key(1)]
    assert decode_day(written[0][0], written[0][1] or b"").count == 4
    assert decode_progress(written[1][1] or b"").next_offset == 5
    assert committed(settings, 1) == 5


class StopsWhen(StaticGroup):
    """A static group whose worker stops once `done` holds (or after a generous deadline)."""

    def __init__(self, settings: Settings, done: Callable[[], bool]) -> None:
        super().__init__(settings)
        self.done, self.deadline = done, time.monotonic() + 60

    def stopping(self) -> bool:
        return self.done() or time.monotonic() > self.deadline


def test_run_reads_from_the_states_next_offset_not_the_groups(make_settings: Callable[..., Settings]) -> None:
    settings = make_settings(partitions=1, daily_limit=100)
    produce(settings, settings.topic_transactions,
            [(0, b"u1", transaction(f"t{i}", f"2026-03-10T1{i}:00:00+05:30")) for i in range(5)])
    asyncio.run(StaticGroup(settings).commit({0: 4}))  # the group's offset ahead of the state
    values: dict[str, Any] = {progress_key(0): orjson.dumps({"o": 1, "t": None})}  # offset 0 already counted
    processor = core(settings, values, StopsWhen(settings, lambda: processor.metrics.as_dict()["consumed"] >= 4))
    asyncio.run(processor.run())
    assert processor.metrics.as_dict()["counted"] == 4  # offsets 1..4, in order
    day = processor.days.day("u1|2026-03-10")
    assert day is not None and day.head == [f"t{i}" for i in range(1, 5)]
    progress = processor.days.progress(0)
    assert progress is not None and progress.next_offset == 5


def test_alerts_once_and_dead_letters_bad_records(make_settings: Callable[..., Settings]) -> None:
    settings = make_settings(partitions=1, daily_limit=2)
    processor = core(settings, {})
    values = [transaction(f"t{i}", f"2026-03-10T1{i}:00:00+05:30") for i in range(4)]
    values.append(transaction("t2", "2026-03-10T12:00:00+05:30"))  # replayed crossing
    values.append(b"{not json")
    values.append(json.dumps({**json.loads(transaction("t9", "2026-03-10T10:00:00+05:30")), "currency": "XYZ"}).encode())

    async def run() -> None:
        await count(processor, [Record(settings.topic_transactions, 0, i, b"u1", v) for i, v in enumerate(values)])
        await processor.commit()

    asyncio.run(run())
    every = [orjson.loads(v or b"") for _, v in read_topic(settings, settings.topic_alerts)]
    letters = [orjson.loads(v or b"") for _, v in read_topic(settings, settings.topic_dlq)]
    # the heads-up at 80 % of 2 (the second transaction), the alert over it
    assert [(a["crossing_transaction_id"], a["tier"]) for a in every] == [("t1", "warn"), ("t2", "alert"), ("t2", "alert")]
    alerts = [a for a in every if a["tier"] == "alert"]
    assert [a["crossing_transaction_id"] for a in alerts] == ["t2", "t2"]  # raised, then re-sent
    assert alerts[0]["alert_id"] == alerts[1]["alert_id"] and alerts[0]["count"] == 3
    assert alerts[0]["transaction_ids"] == ["t0", "t1", "t2"]
    assert [d["error"] for d in letters] == ["invalid_json", "unknown_currency"]
    # the day's value went to the changelog as faust's json codec would write it
    changelog = read_topic(settings, f"{settings.app_id}-days-changelog")
    day_values = {json.loads(k or b""): v for k, v in changelog if b"__" not in (k or b"")}
    day = decode_day("u1|2026-03-10", day_values["u1|2026-03-10"] or b"")
    assert (day.count, day.head, day.crossing) == (4, ["t0", "t1", "t2"], "t2")
    assert day.holds("t3") and not day.holds("t4")


def test_expired_days_are_forgotten_including_a_late_one_older_than_the_rest(
        make_settings: Callable[..., Settings]) -> None:
    """The cleanup skips its scan while every day held is newer than its cutoff: a day counted in the
    same batch as a scan, and a late day older than those held, still count as held."""
    settings = make_settings(partitions=1, retention="P1D")  # days are kept 3 days after they end
    values: dict[str, Any] = {}
    processor = core(settings, values)

    def utc(tid: str, user: str, at: str) -> bytes:
        return json.dumps({"transaction_id": tid, "user_id": user, "amount": "1", "currency": "INR",
                           "status": "succeeded", "occurred_at": at, "timezone": "UTC"}).encode()

    steps = [("u1", "2026-03-01T10:00:00Z", {"u1|2026-03-01"}),
             ("u2", "2026-03-10T10:00:00Z", {"u2|2026-03-10"}),  # u1 expired; u2 counted with the scan
             ("u4", "2026-03-14T10:00:00Z", {"u4|2026-03-14"}),  # u2 ended 03-11 00:00: expired at 03-14 00:00
             ("u3", "2026-03-13T12:00:00Z", {"u3|2026-03-13", "u4|2026-03-14"}),  # late, older than u4
             ("u5", "2026-03-17T05:00:00Z", {"u4|2026-03-14", "u5|2026-03-17"})]  # u3 expired at 03-17 00:00

    async def run() -> None:
        for offset, (user, at, held) in enumerate(steps):
            await count(processor, [Record(settings.topic_transactions, 0, offset, user.encode(),
                                           utc(f"t{offset}", user, at))])
            assert {key for key in values if "|2026" in key} == held, (user, sorted(values))

    asyncio.run(run())
