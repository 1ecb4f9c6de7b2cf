"""The publisher on the real broker: every record lands where events.jsonl says, overrides first."""

from __future__ import annotations

import threading
import time
from typing import Callable

import pytest
from confluent_kafka import Consumer, TopicPartition

from paylimit.contracts import LimitOverride
from paylimit.kafka import partition_for
from paylimit.settings import Settings
from producer_sim.generator import generate
from producer_sim.publisher import Publisher, publish, publish_limits
from producer_sim.scenario import load_scenario

pytestmark = pytest.mark.integration


def read_all(settings: Settings, topic: str) -> dict[tuple[int, int], tuple[bytes | None, bytes | None]]:
    """Every record of `topic`, from the start to the end of each partition: (partition, offset) -> (key, value)."""
    consumer = Consumer(settings.kafka_client_config(**{"group.id": f"{settings.app_id}-reader",
                                                        "enable.auto.commit": False}))
    try:
        ends = {}
        for p in consumer.list_topics(topic, timeout=10).topics[topic].partitions:
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
            if high > low:
                ends[p] = high
        consumer.assign([TopicPartition(topic, p, 0) for p in ends])
        got: dict[tuple[int, int], tuple[bytes | None, bytes | None]] = {}
        while ends:
            msg = consumer.poll(10)
            assert msg is not None, f"timed out reading {topic}"
            assert not msg.error(), msg.error()
            got[(msg.partition(), msg.offset())] = (msg.key(), msg.value())
            if msg.offset() >= ends[msg.partition()] - 1:
                del ends[msg.partition()]
        return got
    finally:
        consumer.close()


def test_every_record_is_where_the_sent_record_says(make_settings: Callable[..., Settings]) -> None:
    settings = make_settings()
    plan = generate(load_scenario("malformed"), 4)
    result = publish(settings, plan.records)
    assert not result.failed
    assert [r.seq for r in result.sent] == list(range(len(plan.records)))
    on_topic = read_all(settings, settings.topic_transactions)
    assert len(on_topic) == len(plan.records)
    for sent, record in zip(result.sent, plan.records):
        assert on_topic[(sent.partition, sent.offset)] == (record.key.encode(), record.value)
        assert sent.value.encode() == record.value and sent.expect_error == record.expect_error
    # keyed by user: one user's records all land on one partition
    by_user: dict[str | None, set[int]] = {}
    for sent in result.sent:
        by_user.setdefault(sent.key, set()).add(sent.partition)
    assert all(len(parts) == 1 for parts in by_user.values())


def test_limits_are_written_as_overrides(make_settings: Callable[..., Settings]) -> None:
    settings = make_settings()
    publish_limits(settings, {"alice": 3, "bob": 0})
    got = {k.decode(): LimitOverride.model_validate_json(v) for k, v in read_all(settings, settings.topic_limits).values()}
    assert {u: o.limit for u, o in got.items()} == {"alice": 3, "bob": 0}


def test_rate_caps_the_send_and_run_works_from_a_thread(make_settings: Callable[..., Settings]) -> None:
    settings = make_settings()
    records = generate(load_scenario("under_limit"), 1).records[:40]
    publisher = Publisher(settings, records, rate=100)
    results = []
    began = time.monotonic()
    thread = threading.Thread(target=lambda: results.append(publisher.run()))
    thread.start()
    thread.join(30)
    assert not thread.is_alive()
    assert time.monotonic() - began >= 0.35  # 40 records at 100/s
    assert len(results[0].sent) == 40


def test_stop_ends_the_run_early(make_settings: Callable[..., Settings]) -> None:
    settings = make_settings()
    records = generate(load_scenario("under_limit"), 1).records[:200]
    publisher = Publisher(settings, records, rate=50)
    threading.Timer(0.3, publisher.stop).start()
    result = publisher.run()
    assert 0 < len(result.sent) < 200


def test_each_users_records_are_on_the_partition_the_workers_look_at(make_settings: Callable[..., Settings]) -> None:
    settings = make_settings()
    result = publish(settings, generate(load_scenario("heavy_users"), 2).records)
    keyed = [r for r in result.sent if r.key]
    assert len({r.key for r in keyed}) > 50
    assert [r.partition for r in keyed] == [partition_for(r.key.encode(), settings.partitions) for r in keyed]
