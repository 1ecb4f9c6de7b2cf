"""paylimit's one partitioner: `partition_for` computes where every paylimit producer puts a key."""

from __future__ import annotations

import uuid
from typing import Any, Callable

import pytest
from confluent_kafka import Producer

from paylimit.kafka import partition_for, producer_config
from paylimit.settings import Settings


def test_murmur2_is_the_java_clients() -> None:
    # Kafka's own UtilsTest.testMurmur2 vectors (signed 32-bit, as Java prints them)
    cases = {b"21": -973932308, b"foobar": -790332482, b"a-little-bit-long-string": -985981536,
             b"a-little-bit-longer-string": -1486304829, b"abc": 479470107,
             b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971}
    for key, java in cases.items():
        # Utils.toPositive(murmur2(key)) % partitions, with a partition count the hash fills exactly
        assert partition_for(key, 2**31) == java & 0x7FFFFFFF


@pytest.mark.integration
@pytest.mark.parametrize("partitions", [6, 7])
def test_each_key_lands_on_the_partition_computed_for_it(make_settings: Callable[..., Settings],
                                                         partitions: int) -> None:
    settings = make_settings(partitions=partitions)
    keys = [f"user-{i:04d}" for i in range(200)] + [uuid.uuid4().hex for _ in range(50)] + ["ünïcode-ユーザー", "x"]
    landed: dict[bytes, int] = {}

    def delivered(err: Any, msg: Any) -> None:
        landed[msg.key()] = msg.partition() if err is None else -1

    producer = Producer(producer_config(settings, acks="all", on_delivery=delivered))
    for key in keys:
        producer.produce(settings.topic_transactions, b"{}", key.encode())
    assert producer.flush(30) == 0
    assert landed == {key.encode(): partition_for(key.encode(), partitions) for key in keys}
    assert len(set(landed.values())) == partitions
