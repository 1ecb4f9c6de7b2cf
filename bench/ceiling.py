"""The ceiling: a bare confluent-kafka consume loop that only parses each record and counts it.

It does the job's irreducible work and nothing else: parse the JSON, take the local date of
`occurred_at` in Asia/Kolkata, increment a dict keyed by (user, local date) for a successful
transaction. No validation, no state persistence, no commits: the most one Python consumer
process can do on this machine, which the other figures are divided by.
"""

from __future__ import annotations

import time
import uuid
from datetime import datetime
from typing import Callable
from zoneinfo import ZoneInfo

import orjson
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, TopicPartition

from bench.config import ZONE
from bench.figures import Throughput
from paylimit.settings import Settings

BATCH = 10_000


def run_ceiling(settings: Settings, topic: str, expected: int, timeout: float = 300.0,
                on_progress: Callable[[int], None] = lambda _n: None) -> tuple[Throughput, dict[tuple[str, str], int]]:
    """Consume `expected` records of `topic` from the beginning; the throughput and the counts."""
    zone = ZoneInfo(ZONE)
    counts: dict[tuple[str, str], int] = {}
    consumer = Consumer(settings.kafka_client_config(**{
        "group.id": f"bench-ceiling-{uuid.uuid4().hex[:8]}", "enable.auto.commit": False,
        "enable.auto.offset.store": False, "auto.offset.reset": "earliest",
    }))
    try:
        began = time.monotonic()
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
        first: float | None = None
        seen = 0
        deadline = began + timeout
        while seen < expected and time.monotonic() < deadline:
            msgs = consumer.consume(BATCH, timeout=0.5)
            if msgs and first is None:
                first = time.monotonic()
            for msg in msgs:
                if msg.error():
                    raise KafkaException(msg.error())
                tx = orjson.loads(msg.value() or b"{}")
                if tx.get("status") == "succeeded":
                    key = (tx["user_id"], datetime.fromisoformat(tx["occurred_at"]).astimezone(zone).date().isoformat())
                    counts[key] = counts.get(key, 0) + 1
            seen += len(msgs)
            on_progress(len(msgs))
        end = time.monotonic()
    finally:
        consumer.close()
    return Throughput(seen, end - began, end - (first or began), complete=seen >= expected), counts
