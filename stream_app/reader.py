"""Reading the transactions topic straight from Kafka with confluent-kafka.

faust assigns the worker its partitions (its consumer group, co-partitioned with the `days` table),
but its per-record machinery (consumer thread, conductor, stream, event objects) costs several
times the counting itself. So the worker reads its assigned transactions partitions with a plain
confluent-kafka consumer (assigned, never subscribed, never committing), from the next offset its
state says, in batches; faust's own fetching of them is paused.
"""

from __future__ import annotations

from dataclasses import dataclass

from confluent_kafka import Consumer, KafkaException, TopicPartition

from paylimit.errors import InfraError
from paylimit.kafka import retry_transient
from paylimit.settings import Settings


@dataclass(slots=True)  # not frozen: a frozen dataclass's __init__ costs 4x (one per record)
class Record:
    """The fields of a Kafka record the worker uses (those of a faust Message too)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None


class TransactionReader:
    """The worker's own reads of the transactions topic: a stream of its assigned partitions
    (`assign`, `poll`), and where a partition with no progress starts (`start_offset`), on two
    consumers opened on first use."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.topic = settings.topic_transactions
        self._stream: Consumer | None = None
        self._offsets: Consumer | None = None

    def _consumer(self, prefetch_kbytes: int) -> Consumer:
        # the workers' group id, only to read its committed offsets: an assigned consumer never
        # joins the group. The stream prefetches 8 MB (librdkafka's default is 64 MB): with 2 MB a
        # catch-up's batches averaged 440 records and the worker waited on fetches for 6 s of 13.5
        # (300,000 records); with 8 MB, 1,500 records and 0.9 s, and the catch-up ran 1.6x faster. The broker
        # answers a fetch when it has a batch's worth or the batch window has passed: one fetch
        # per window under a steady stream, not one per record (the broker's CPU is shared here).
        return Consumer(self.settings.kafka_client_config(**{
            "group.id": self.settings.app_id, "enable.auto.commit": False, "enable.auto.offset.store": False,
            "auto.offset.reset": "earliest", "queued.max.messages.kbytes": prefetch_kbytes,
            "fetch.max.bytes": prefetch_kbytes * 1024, "fetch.min.bytes": 256 * 1024,
            "fetch.wait.max.ms": max(1, round(self.settings.batch_window * 1000))}))

    def assign(self, offsets: dict[int, int]) -> None:
        """Stream these partitions from these offsets (replacing any earlier assignment)."""
        if self._stream is None:
            self._stream = self._consumer(8192)
        try:
            self._stream.assign([TopicPartition(self.topic, p, o) for p, o in offsets.items()])
        except KafkaException as exc:
            raise InfraError(f"cannot assign {self.topic} partitions {sorted(offsets)}: {exc}") from None

    def poll(self, max_records: int, timeout: float) -> list[Record]:
        """The next records of the assigned partitions (each partition's in offset order): at most
        `max_records`, waiting at most `timeout` seconds for the first."""
        if self._stream is None:
            return []
        stream = self._stream
        try:
            # what the last fetches brought, at once; else the first record to arrive and what
            # came with it (`consume` alone would wait out the timeout for a full batch)
            messages = stream.consume(max_records, 0)
            if not messages:
                first = stream.poll(timeout)
                if first is not None:
                    messages = [first, *stream.consume(max_records - 1, 0)] if max_records > 1 else [first]
        except KafkaException as exc:
            raise InfraError(f"cannot read {self.topic}: {exc}") from None
        records = []
        for msg in messages:
            error = msg.error()
            if error is not None:
                if error.fatal():
                    raise InfraError(f"cannot read {self.topic}: {error}")
                continue  # transient (the client retries): logged by librdkafka
            records.append(Record(self.topic, msg.partition() or 0, msg.offset() or 0, msg.key(), msg.value()))
        return records

    def high_watermark(self, partition: int) -> int | None:
        """The end of an assigned partition as the stream's last fetch saw it (no request to the
        broker); None before its first fetch."""
        if self._stream is None:
            return None
        try:
            high = self._stream.get_watermark_offsets(TopicPartition(self.topic, partition), cached=True)[1]
        except KafkaException:
            return None
        return high if high >= 0 else None

    def _offsets_consumer(self) -> Consumer:
        if self._offsets is None:
            self._offsets = self._consumer(4096)  # never assigned: it only asks for offsets
        return self._offsets

    def start_offset(self, partition: int) -> int:
        """Where a partition with no progress in the state starts: the group's committed offset,
        else the earliest (auto.offset.reset=earliest)."""
        consumer, tp = self._offsets_consumer(), TopicPartition(self.topic, partition)
        try:
            # a fresh broker answers NOT_COORDINATOR while it creates __consumer_offsets
            committed = retry_transient(lambda: consumer.committed([tp], timeout=10)[0].offset, 30)
            if committed >= 0:
                return committed
            return retry_transient(lambda: consumer.get_watermark_offsets(tp, timeout=10)[0], 30)
        except KafkaException as exc:
            raise InfraError(f"{self.topic}[{partition}]: no committed or earliest offset: {exc}") from None
