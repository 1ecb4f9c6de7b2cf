"""Sending a plan to Kafka: an idempotent confluent-kafka producer that records where each record landed.

`publish_limits` writes the per-user overrides to the limits topic first (the demo calls it before
starting the worker). `Publisher` sends the records keyed by user_id (partitioned as every paylimit
producer partitions, `paylimit.kafka.PARTITIONER`: where the workers' usage view looks), with a
delivery callback,
`poll` after each produce and `flush` at the end, and turns every delivery report into a
`SentRecord` (partition, offset, produce time). Pacing: `rate` caps events per second; `speed`
replays the virtual clock (simulated seconds per real second; a quiet stretch waits at most
`max_gap` real seconds). Nothing connects before `run()`, which tests may call from a thread.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from confluent_kafka import KafkaError, Message, Producer

from paylimit.contracts import LimitOverride, SentRecord, encode
from paylimit.errors import InfraError
from paylimit.kafka import ANY_PARTITION, produce_all, producer_config
from paylimit.settings import Settings
from producer_sim.generator import SimRecord

PRODUCER_OPTIONS: dict[str, Any] = {"enable.idempotence": True, "acks": "all", "linger.ms": 5}


def publish_limits(settings: Settings, overrides: Mapping[str, int], timeout: float = 30.0) -> None:
    """Write each user's limit override (key user_id, value LimitOverride JSON) and wait for all."""
    if not overrides:
        return
    produce_all(settings, settings.topic_limits,
                [(ANY_PARTITION, user.encode(), encode(LimitOverride(user_id=user, limit=limit)))
                 for user, limit in sorted(overrides.items())], timeout)


@dataclass
class PublishResult:
    sent: list[SentRecord] = field(default_factory=list)  # delivered records, in send (seq) order
    failed: dict[int, str] = field(default_factory=dict)  # seq -> delivery error


class Publisher:
    """Sends records to `settings.topic_transactions`; `run()` blocks until all are delivered."""

    def __init__(
        self,
        settings: Settings,
        records: Sequence[SimRecord],
        *,
        rate: float | None = None,
        speed: float | None = None,
        max_gap: float = 1.0,
        on_progress: Callable[[int], None] | None = None,
        flush_timeout: float = 60.0,
    ) -> None:
        self.settings = settings
        self.records = records
        self.rate = rate if rate and rate > 0 else None
        self.speed = speed if speed and speed > 0 else None
        self.max_gap = max_gap
        self.on_progress = on_progress
        self.flush_timeout = flush_timeout
        self._stop = threading.Event()
        self._result = PublishResult()
        self._delivered: dict[int, SentRecord] = {}

    def stop(self) -> None:
        """Stop sending after the current record (what was produced is still flushed)."""
        self._stop.set()

    def _report(self, seq: int, record: SimRecord) -> Callable[[KafkaError | None, Message], None]:
        def report(err: KafkaError | None, msg: Message) -> None:
            partition, offset = msg.partition(), msg.offset()
            if err is not None or partition is None or offset is None:
                self._result.failed[seq] = err.str() if err is not None else "delivery report without partition/offset"
            else:
                _kind, ms = msg.timestamp()
                produced = datetime.fromtimestamp(ms / 1000, UTC) if ms > 0 else datetime.now(UTC)
                self._delivered[seq] = SentRecord(
                    seq=seq, key=record.key, value=record.value.decode("utf-8"), partition=partition,
                    offset=offset, produced_at=produced, expect_error=record.expect_error)
            if self.on_progress:
                self.on_progress(1)
        return report

    def _wait_until(self, producer: Producer, deadline: float) -> None:
        while (left := deadline - time.monotonic()) > 0 and not self._stop.is_set():
            producer.poll(min(left, 0.1))

    def _produce(self, producer: Producer, seq: int, record: SimRecord) -> None:
        while True:
            try:
                producer.produce(self.settings.topic_transactions, key=record.key.encode() if record.key else None,
                                 value=record.value, on_delivery=self._report(seq, record))
                producer.poll(0)
                return
            except BufferError:  # the local queue is full: serve delivery reports, then retry
                producer.poll(0.1)

    def run(self) -> PublishResult:
        producer = Producer(producer_config(self.settings, **PRODUCER_OPTIONS))
        began = clock = time.monotonic()
        previous_at: datetime | None = None
        for seq, record in enumerate(self.records):
            if self._stop.is_set():
                break
            target = clock
            if self.speed and previous_at is not None:
                gap = max((record.at - previous_at).total_seconds(), 0.0) / self.speed
                target = clock + min(gap, self.max_gap)
            if self.rate:
                target = max(target, began + seq / self.rate)
            self._wait_until(producer, target)
            clock = max(target, clock)
            previous_at = record.at if previous_at is None else max(previous_at, record.at)
            self._produce(producer, seq, record)
        left = producer.flush(self.flush_timeout)
        if left:
            raise InfraError(f"{left} records were not delivered to {self.settings.topic_transactions} "
                             f"within {self.flush_timeout:.0f}s")
        self._result.sent = [self._delivered[s] for s in sorted(self._delivered)]
        return self._result


def publish(settings: Settings, records: Sequence[SimRecord], **options: Any) -> PublishResult:
    """Send `records` (see Publisher for the options) and return what landed where."""
    return Publisher(settings, records, **options).run()
