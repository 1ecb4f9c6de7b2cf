"""Smoke tests on the real broker: idempotent produce + consumer group, compaction, transactions."""

from __future__ import annotations

import time
from collections import defaultdict

import pytest
from confluent_kafka import Consumer, KafkaError, Message, Producer

from tests.test_smoke.kafka_helpers import create_topic, read_all, text, unique

pytestmark = pytest.mark.integration


def check_delivery(errors: list[str]):  # type: ignore[no-untyped-def]
    def on_delivery(err: KafkaError | None, _msg: Message) -> None:
        if err is not None:
            errors.append(err.str())

    return on_delivery


def test_idempotent_keyed_messages_come_back_in_order_per_key(kafka_bootstrap: str) -> None:
    topic, n, keys = unique("keyed"), 10_000, 100
    create_topic(kafka_bootstrap, topic, partitions=6)
    errors: list[str] = []
    producer = Producer({"bootstrap.servers": kafka_bootstrap, "enable.idempotence": True, "acks": "all",
                         "linger.ms": 5})
    on_delivery = check_delivery(errors)
    for i in range(n):
        key = f"user-{i % keys}"
        producer.produce(topic, key=key, value=f"{key}:{i // keys}", on_delivery=on_delivery)
        producer.poll(0)
    assert producer.flush(30) == 0
    assert errors == []

    seen: dict[str, list[int]] = defaultdict(list)
    consumer = Consumer({"bootstrap.servers": kafka_bootstrap, "group.id": unique("group"),
                         "auto.offset.reset": "earliest", "enable.auto.commit": False})
    consumer.subscribe([topic])
    try:
        deadline = time.monotonic() + 30
        total = 0
        while total < n and time.monotonic() < deadline:
            for msg in consumer.consume(1000, timeout=1.0):
                assert not msg.error(), msg.error()
                key, seq = text(msg.value()).split(":")
                assert text(msg.key()) == key
                seen[key].append(int(seq))
                total += 1
        consumer.commit(asynchronous=False)
    finally:
        consumer.close()
    assert total == n
    assert len(seen) == keys
    for key, seqs in seen.items():
        assert seqs == list(range(n // keys)), key  # all there, no duplicate, in order


def test_compacted_topic_compacts(kafka_bootstrap: str) -> None:
    topic = unique("compact")
    # segment.bytes has a 1 MiB floor in Kafka 4; segment.ms rolls the segment instead
    create_topic(kafka_bootstrap, topic, config={
        "cleanup.policy": "compact", "segment.ms": "100", "segment.bytes": str(1 << 20),
        "min.cleanable.dirty.ratio": "0.01", "delete.retention.ms": "100", "min.compaction.lag.ms": "0"})
    producer = Producer({"bootstrap.servers": kafka_bootstrap, "enable.idempotence": True, "acks": "all"})
    errors: list[str] = []
    on_delivery = check_delivery(errors)
    for i in range(50):
        producer.produce(topic, key=f"k{i % 5}", value=f"v{i}", on_delivery=on_delivery)
        producer.poll(0)
    assert producer.flush(10) == 0 and errors == []

    def values_of(key: bytes) -> list[str]:
        return [text(m.value()) for m in read_all(kafka_bootstrap, topic) if m.key() == key]

    assert len(values_of(b"k0")) == 10
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        # the active segment is never cleaned: a new record after segment.ms rolls it
        time.sleep(1.0)
        producer.produce(topic, key="tick", value=str(time.time()), on_delivery=on_delivery)
        assert producer.flush(10) == 0
        if all(values_of(f"k{j}".encode()) == [f"v{45 + j}"] for j in range(5)):
            break
    assert errors == []
    for j in range(5):
        assert values_of(f"k{j}".encode()) == [f"v{45 + j}"], "older values were not compacted away within 60 s"


def test_aborted_transaction_is_invisible_to_read_committed(kafka_bootstrap: str) -> None:
    topic = unique("txn")
    create_topic(kafka_bootstrap, topic)
    producer = Producer({"bootstrap.servers": kafka_bootstrap, "transactional.id": unique("tx-id"),
                         "enable.idempotence": True, "acks": "all"})
    producer.init_transactions(30)

    def in_transaction(values: list[str], commit: bool) -> None:
        producer.begin_transaction()
        for value in values:
            producer.produce(topic, key="u", value=value)
            producer.poll(0)
        if commit:
            producer.commit_transaction(30)
        else:
            producer.flush(10)
            producer.abort_transaction(30)

    in_transaction([f"committed-{i}" for i in range(5)], commit=True)
    in_transaction([f"aborted-{i}" for i in range(5)], commit=False)
    in_transaction(["after"], commit=True)

    committed = [text(m.value()) for m in read_all(kafka_bootstrap, topic, config={"isolation.level": "read_committed"})]
    assert committed == [f"committed-{i}" for i in range(5)] + ["after"]
    # the aborted records really are in the log: a read_uncommitted reader sees them
    everything = [text(m.value()) for m in read_all(kafka_bootstrap, topic,
                                                  config={"isolation.level": "read_uncommitted"})]
    assert [v for v in everything if v.startswith("aborted-")] == [f"aborted-{i}" for i in range(5)]
