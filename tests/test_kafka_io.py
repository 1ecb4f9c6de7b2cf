"""paylimit.kafka's two I/O helpers on the real broker: `produce_all` (written and acknowledged, or
InfraError) and `read_to_end` (what is there now, in order)."""

from __future__ import annotations

from typing import Callable

import pytest
from confluent_kafka.admin import AdminClient, NewTopic

from paylimit.errors import InfraError
from paylimit.kafka import ANY_PARTITION, partition_for, produce_all, read_to_end
from paylimit.settings import Settings

pytestmark = pytest.mark.integration


def test_what_is_produced_is_read_back_to_the_end(make_settings: Callable[..., Settings]) -> None:
    settings = make_settings(partitions=3)
    topic = settings.topic_transactions
    produce_all(settings, topic, [(2, b"k", b"first"), (2, b"k", b"second"), (ANY_PARTITION, b"user-1", b"keyed")])
    records, last = read_to_end(settings, topic, None, f"{settings.app_id}-read")
    assert [r for r in records if r[0] == 2 and r[1] == b"k"] == [(2, b"k", b"first"), (2, b"k", b"second")]
    assert (partition_for(b"user-1", 3), b"user-1", b"keyed") in records and len(records) == 3
    assert last[2] >= 1


def test_a_record_the_broker_refuses_is_an_error_not_a_silent_loss(make_settings: Callable[..., Settings]) -> None:
    settings = make_settings()
    topic = f"{settings.app_id}-small"
    admin = AdminClient(settings.kafka_client_config())
    for created in admin.create_topics([NewTopic(topic, 1, 1, config={"max.message.bytes": "1000"})]).values():
        created.result(timeout=30)
    with pytest.raises(InfraError, match=topic):
        produce_all(settings, topic, [(0, b"k", b"x" * 5000)], timeout=30)
