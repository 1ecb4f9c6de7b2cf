"""Kafka plumbing shared by the services: creating paylimit's topics and waiting for the broker."""

from __future__ import annotations

import time

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, NewTopic

from paylimit.errors import InfraError
from paylimit.settings import Settings

#: errors that pass: a topic created a moment ago (its partitions unknown to the client, or
#: without a leader yet), a coordinator moving or loading, a connection being made again
TRANSIENT = {KafkaError._UNKNOWN_PARTITION, KafkaError._UNKNOWN_TOPIC, KafkaError.NOT_LEADER_FOR_PARTITION,
             KafkaError.LEADER_NOT_AVAILABLE, KafkaError.UNKNOWN_TOPIC_OR_PART, KafkaError._TRANSPORT,
             KafkaError._TIMED_OUT, KafkaError.NOT_COORDINATOR, KafkaError.COORDINATOR_NOT_AVAILABLE,
             KafkaError.COORDINATOR_LOAD_IN_PROGRESS}


#: how long a command waits for Kafka to answer at start before it gives up with one line
CONNECT_TIMEOUT = 10.0


def transient(exc: KafkaException) -> bool:
    return bool(exc.args[0].retriable()) or exc.args[0].code() in TRANSIENT


def topic_specs(settings: Settings) -> list[NewTopic]:
    """The topics paylimit owns; limits are compacted (latest override per user wins)."""
    p, rf = settings.partitions, settings.replication_factor
    return [
        NewTopic(settings.topic_transactions, p, rf),
        NewTopic(settings.topic_alerts, p, rf),
        NewTopic(settings.topic_dlq, p, rf),
        NewTopic(settings.topic_limits, 1, rf, config={"cleanup.policy": "compact"}),
    ]


def ensure_topics(settings: Settings, timeout: float = 30.0) -> None:
    """Create paylimit's topics if missing; each admin future is checked on its own."""
    admin = AdminClient(settings.kafka_client_config())
    try:
        existing = set(admin.list_topics(timeout=timeout).topics)
    except KafkaException as exc:
        raise InfraError(f"cannot list the topics on Kafka at {settings.kafka_bootstrap_servers}: "
                         f"{exc.args[0].str()}") from None
    wanted = [t for t in topic_specs(settings) if t.topic not in existing]
    if not wanted:
        return
    for topic, fut in admin.create_topics(wanted, operation_timeout=timeout).items():
        try:
            fut.result()
        except KafkaException as exc:
            if exc.args[0].name() != "TOPIC_ALREADY_EXISTS":
                raise InfraError(f"cannot create topic {topic}: {exc.args[0].str()}") from None


def wait_for_broker(settings: Settings, timeout: float = 60.0) -> None:
    """Block until the broker answers a metadata request, or raise InfraError."""
    # log_level 0: while the broker boots, librdkafka would log a "connection refused" line per try
    admin = AdminClient(settings.kafka_client_config(log_level=0))
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        try:
            md = admin.list_topics(timeout=max(0.1, min(2.0, deadline - time.monotonic())))
            if md.brokers:
                return
        except KafkaException as exc:
            last = exc.args[0].str()
        time.sleep(0.3)
    raise InfraError(f"Kafka at {settings.kafka_bootstrap_servers} did not answer within {timeout:.0f} s"
                     + (f" ({last})" if last else ""))


class LagReader:
    """The lag of consumer group `group` on `topic` (records not yet committed, all partitions),
    read again and again on one consumer: a new client per look costs the broker a connection,
    metadata and a coordinator lookup, which is noise in what a benchmark or the demo watches."""

    def __init__(self, settings: Settings, group: str, topic: str, timeout: float = 10.0) -> None:
        from confluent_kafka import Consumer

        self.group, self.topic, self.timeout = group, topic, timeout
        self.consumer = Consumer(settings.kafka_client_config(**{"group.id": group, "enable.auto.commit": False}))

    def lag(self) -> int:
        """Retries briefly on transient broker errors (a just-created topic without a leader yet)."""
        from confluent_kafka import TopicPartition

        consumer, topic, timeout = self.consumer, self.topic, self.timeout
        for attempt in range(20):
            try:
                partitions = consumer.list_topics(topic, timeout=timeout).topics[topic].partitions
                tps = [TopicPartition(topic, p) for p in partitions]
                lag = 0
                for tp in consumer.committed(tps, timeout=timeout):
                    low, high = consumer.get_watermark_offsets(TopicPartition(topic, tp.partition), timeout=timeout)
                    lag += high - (tp.offset if tp.offset >= 0 else low)
                return lag
            except KafkaException as exc:
                if not transient(exc):
                    raise InfraError(f"cannot read the lag of {self.group} on {topic}: {exc.args[0].str()}") from None
                time.sleep(0.1 * (attempt + 1))
        raise InfraError(f"cannot read the lag of {self.group} on {topic}: the broker kept answering with errors")

    def close(self) -> None:
        self.consumer.close()

