"""The dashboard's Kafka probe on the real broker (events in, each group's lag), and its light read
of a transaction's local date."""

from __future__ import annotations

from typing import Callable

import pytest
from confluent_kafka import Consumer, TopicPartition

from dashboard.offsets import KafkaProbe, Offsets, succeeded_local_date
from paylimit.settings import Settings
from tests.e2e.harness import produce


@pytest.mark.integration
def test_the_probe_reads_events_in_and_each_groups_lag(make_settings: Callable[..., Settings]) -> None:
    s = make_settings(partitions=2)
    produce(s, s.topic_transactions, [(0, None, b"a"), (0, None, b"b"), (1, None, b"c")])
    produce(s, s.topic_alerts, [(0, None, b"x")])
    probe = KafkaProbe(s, timeout=10)
    probe.start()
    try:
        assert probe.offsets() == Offsets(produced=3, worker_lag=3, notifier_lag=1)  # nothing committed yet
        consumer = Consumer(s.kafka_client_config(**{"group.id": s.app_id}))
        try:
            consumer.commit(offsets=[TopicPartition(s.topic_transactions, 0, 2)], asynchronous=False)
        finally:
            consumer.close()
        assert probe.offsets() == Offsets(produced=3, worker_lag=1, notifier_lag=1)
    finally:
        probe.stop()


def test_a_succeeded_transaction_is_dated_in_its_zone() -> None:
    record = b'{"status": "succeeded", "occurred_at": "2026-03-10T20:00:00+00:00", "timezone": "Asia/Kolkata"}'
    assert succeeded_local_date(record, "UTC") == "2026-03-11"
    assert succeeded_local_date(record.replace(b', "timezone": "Asia/Kolkata"', b""), "UTC") == "2026-03-10"
    for other in (b'{"status": "failed", "occurred_at": "2026-03-10T20:00:00+00:00"}', b"{not json", None,
                  b'{"status": "succeeded", "occurred_at": "2026-03-10T20:00:00"}',  # no offset: no day
                  b'{"status": "succeeded", "occurred_at": "2026-03-10T20:00:00+00:00", "timezone": "Nowhere/X"}'):
        assert succeeded_local_date(other, "UTC") is None
