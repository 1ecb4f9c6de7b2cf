"""`Writer`: everything the worker writes to Kafka (alerts, dead letters, its table's changelog),
through one confluent-kafka producer, acknowledged a group at a time."""

from __future__ import annotations

from confluent_kafka import KafkaError, Message, Producer

from paylimit.errors import InfraError
from paylimit.kafka import producer_config
from paylimit.settings import Settings

#: a partition left to the producer's partitioner
ANY_PARTITION = -1


class Writer:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._producer: Producer | None = None
        self.failures: list[str] = []

    @property
    def producer(self) -> Producer:
        """Opened on first use."""
        if self._producer is None:
            self._producer = Producer(producer_config(self.settings, **{
                # every write is followed by `wait` (alerts at once, the state every commit interval),
                # which sends what is queued; the linger only keeps a burst being queued from going out
                # in small requests. Not compressed: a broker sharing the worker's cores spent less on
                # uncompressed batches
                "enable.idempotence": True, "acks": "all", "linger.ms": 20, "compression.type": "none",
                # retried for as long as the broker is away (a worker waits for it), never dropped
                "message.timeout.ms": 0,
                # a Python call per failed record only: one per record cost the worker's loop
                "delivery.report.only.error": True, "on_delivery": self._failed}))
        return self._producer

    def _failed(self, error: KafkaError | None, msg: Message) -> None:
        if error is not None:
            self.failures.append(f"{msg.topic()}: {error}")

    def send(self, topic: str, key: bytes | None, value: bytes | None, partition: int = ANY_PARTITION) -> None:
        """Queue one record; `wait` says when the broker has it."""
        while True:
            try:
                self.producer.produce(topic, value, key, partition=partition)
                return
            except BufferError:  # the producer's queue is full: let it drain
                self.producer.poll(0.1)

    def wait(self) -> None:
        """Block until every queued record is acknowledged by the broker; InfraError if one was not."""
        self.producer.flush()
        failures, self.failures = self.failures, []
        if failures:
            raise InfraError(f"Kafka refused {len(failures)} records: {'; '.join(failures[:3])}")
