"""The worker's core without faust: plain lists of records in, on the real broker: counted once,
outputs and state written in their order, the group's offsets from the state."""

from __future__ import annotations

import asyncio
import json
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


def core(settings: Settings, values: dict[str, Any]) -> Processor:
    days = Days(values)
    return Processor(settings, StaticGroup(settings), days, Changelog(changelog_topic(settings), days), {})


def test_records_are_counted_once_and_written_in_order(make_settings: Callable[..., Settings]) -> None:
    settings = make_settings(partitions=2, daily_limit=2)
    values: dict[str, Any] = {}
    processor = core(settings, values)
    records = [Record(settings.topic_transactions, 1, i, b"u1", transaction(f"t{i}", f"2026-03-10T1{i}:00:00+05:30"))
               for i in range(4)]
    records.append(Record(settings.topic_transactions, 1, 4, b"u1", b"{not json"))

    async def run() -> None:
        await processor.process_delivered(records)
        await processor.process_delivered(records)  # delivered again: already in the state
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
    assert decode_day(written[0][1] or b"").count == 4
    assert decode_progress(written[1][1] or b"").next_offset == 5
    assert committed(settings, 1) == 5


def test_a_stretch_the_group_skipped_is_read_from_the_topic(make_settings: Callable[..., Settings]) -> None:
    settings = make_settings(partitions=1, daily_limit=100)
    produce(settings, settings.topic_transactions,
            [(0, b"u1", transaction(f"t{i}", f"2026-03-10T1{i}:00:00+05:30")) for i in range(5)])
    values: dict[str, Any] = {}
    processor = core(settings, values)
    skipped_ahead = [Record(settings.topic_transactions, 0, i, b"u1", transaction(f"t{i}", f"2026-03-10T1{i}:00:00+05:30"))
                     for i in (3, 4)]
    asyncio.run(processor.process_delivered(skipped_ahead))
    assert processor.metrics.as_dict()["counted"] == 5  # offsets 0..2 read from the topic, in order
    day = processor.days.day("u1|2026-03-10")
    assert day is not None and day.head == [f"t{i}" for i in range(5)]
