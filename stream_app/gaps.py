"""Reading records the stream consumer skipped, straight from Kafka.

faust 0.15.3 can hand the agent a partition's records past a stretch it never delivered (after an
assignment it may process from the earliest offset, then "seek to committed" and jump ahead). The
worker knows the next offset it must process (it is in its state), so when a later record arrives
first it reads the stretch itself, in order, with a plain confluent-kafka consumer (assigned,
never subscribed, never committing), and processes it before going on.
"""

from __future__ import annotations

from dataclasses import dataclass

from confluent_kafka import Consumer, KafkaException, TopicPartition

from paylimit.errors import InfraError
from paylimit.settings import Settings


@dataclass(frozen=True)
class Record:
    """The fields of a faust Message the agent uses."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None


class GapReader:
    """Reads [start, end) of one partition; opened on first use, one per worker."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._consumer: Consumer | None = None

    def _open(self) -> Consumer:
        if self._consumer is None:
            # the workers' group id, only to read its committed offsets: an assigned consumer
            # never joins the group
            self._consumer = Consumer(self.settings.kafka_client_config(**{
                "group.id": self.settings.app_id, "enable.auto.commit": False,
                "enable.auto.offset.store": False,
                # it reads short stretches: librdkafka's default prefetch (64 MB) would only cost memory
                "queued.max.messages.kbytes": 4096, "fetch.max.bytes": 4 << 20}))
        return self._consumer

    def start_offset(self, topic: str, partition: int) -> int:
        """Where a partition with no progress in the state starts: the group's committed offset,
        else the earliest (auto.offset.reset=earliest)."""
        consumer = self._open()
        try:
            committed = consumer.committed([TopicPartition(topic, partition)], timeout=10)[0].offset
            return committed if committed >= 0 else consumer.get_watermark_offsets(
                TopicPartition(topic, partition), timeout=10)[0]
        except KafkaException as exc:
            raise InfraError(f"{topic}[{partition}]: no committed or earliest offset: {exc}") from None

    def end_offset(self, topic: str, partition: int) -> int:
        try:
            return self._open().get_watermark_offsets(TopicPartition(topic, partition), timeout=10)[1]
        except KafkaException as exc:
            raise InfraError(f"{topic}[{partition}]: no end offset: {exc}") from None

    def read(self, topic: str, partition: int, start: int, end: int, timeout: float = 30.0) -> list[Record]:
        """Records [start, end) of one partition, in offset order."""
        consumer = self._open()
        consumer.assign([TopicPartition(topic, partition, start)])
        records: list[Record] = []
        try:
            while True:
                msg = consumer.poll(timeout)
                if msg is None:
                    raise InfraError(f"timed out reading {topic}[{partition}] offsets {start}..{end - 1}")
                if msg.error():
                    continue
                offset = msg.offset() or 0
                if offset >= end:
                    return records
                records.append(Record(topic, partition, offset, msg.key(), msg.value()))
                if offset == end - 1:
                    return records
        finally:
            consumer.unassign()

    def close(self) -> None:
        if self._consumer is not None:
            self._consumer.close()
