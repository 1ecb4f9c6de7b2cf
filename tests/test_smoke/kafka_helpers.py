"""Small confluent-kafka helpers for the smoke tests: uuid topics, a checked admin, read-to-end."""

from __future__ import annotations

import time
import uuid
from typing import Any

from confluent_kafka import Consumer, Message, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic


def unique(prefix: str) -> str:
    return f"smoke-{prefix}-{uuid.uuid4().hex[:10]}"


def create_topic(bootstrap: str, name: str, partitions: int = 1, config: dict[str, str] | None = None) -> None:
    """Create one topic and check its future on its own."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    futures = admin.create_topics([NewTopic(name, partitions, 1, config=config or {})], operation_timeout=30)
    futures[name].result(timeout=30)


def text(data: bytes | None) -> str:
    """A record's key or value as text (the smoke tests never send None)."""
    assert data is not None
    return data.decode()


def read_all(bootstrap: str, topic: str, partitions: int = 1, timeout: float = 20.0,
             config: dict[str, Any] | None = None) -> list[Message]:
    """Every record now on `topic` (assigned from the beginning, up to the high watermark)."""
    conf = {"bootstrap.servers": bootstrap, "group.id": unique("reader"), "enable.auto.commit": False,
            "auto.offset.reset": "earliest", **(config or {})}
    consumer = Consumer(conf)
    try:
        tps = [TopicPartition(topic, p, 0) for p in range(partitions)]
        ends = {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in range(partitions)}
        consumer.assign(tps)
        records: list[Message] = []
        done = {p for p, end in ends.items() if end == 0}
        deadline = time.monotonic() + timeout
        while len(done) < partitions and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is None:
                # read_committed stops before the end (an aborted batch's control record): check position
                for tp in consumer.position(tps):
                    if tp.offset >= ends[tp.partition]:
                        done.add(tp.partition)
                continue
            error = msg.error()
            if error is not None:
                raise AssertionError(error.str())
            records.append(msg)
            partition, offset = msg.partition(), msg.offset()
            assert partition is not None and offset is not None
            if offset + 1 >= ends[partition]:
                done.add(partition)
        assert len(done) == partitions, f"read of {topic} did not reach the end within {timeout}s"
        return records
    finally:
        consumer.close()
