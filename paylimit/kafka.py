"""Kafka plumbing shared by the services: the one partitioner, creating paylimit's topics (replicated
to the cluster's size), waiting for the brokers, reading a topic to its end, and reading a group's
lag and the cluster's health."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable, Iterable, TypeVar

from aiokafka.partitioner import murmur2
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from paylimit.errors import InfraError
from paylimit.settings import Settings

#: errors that pass: a topic created a moment ago (its partitions unknown to the client, or
#: without a leader yet), a coordinator moving or loading, a connection being made again, a
#: request to a broker that left the cluster (librdkafka drops its handle: _DESTROY_BROKER)
TRANSIENT = {KafkaError._UNKNOWN_PARTITION, KafkaError._UNKNOWN_TOPIC, KafkaError.NOT_LEADER_FOR_PARTITION,
             KafkaError.LEADER_NOT_AVAILABLE, KafkaError.UNKNOWN_TOPIC_OR_PART, KafkaError._TRANSPORT,
             KafkaError._TIMED_OUT, KafkaError.NOT_COORDINATOR, KafkaError.COORDINATOR_NOT_AVAILABLE,
             KafkaError.COORDINATOR_LOAD_IN_PROGRESS, KafkaError._DESTROY_BROKER}


#: librdkafka's name for the Java clients' default partitioner: murmur2 over the raw key bytes (a
#: record without a key goes to a random partition). A worker answers a user's usage only if it
#: finds the partition the user's records are on, so every producer of paylimit's uses it
PARTITIONER = "murmur2_random"


def producer_config(settings: Settings, **extra: Any) -> dict[str, Any]:
    """Options for every confluent-kafka producer paylimit runs: the client options and `PARTITIONER`."""
    return settings.kafka_client_config(partitioner=PARTITIONER, **extra)


#: a record's partition left to the producer's partitioner
ANY_PARTITION = -1


def produce_all(settings: Settings, topic: str, records: Iterable[tuple[int, bytes | None, bytes | None]],
                timeout: float = 60.0) -> None:
    """Write (partition or ANY_PARTITION, key, value) records to `topic` on one idempotent producer,
    and wait until the broker has every one; InfraError if it refused one or `timeout` passed."""
    errors: list[str] = []

    def report(err: KafkaError | None, _msg: Any) -> None:
        if err is not None:
            errors.append(err.str())

    producer = Producer(producer_config(settings, **{"enable.idempotence": True, "acks": "all", "linger.ms": 5}))
    for partition, key, value in records:
        while True:
            try:
                producer.produce(topic, value, key, partition=partition, on_delivery=report)
                break
            except BufferError:  # the producer's queue is full: let it drain
                producer.poll(0.1)
        producer.poll(0)
    left = producer.flush(timeout)
    if left or errors:
        raise InfraError(f"could not write to {topic}: {'; '.join(errors[:3]) or f'{left} not delivered in {timeout:.0f}s'}")


def partition_for(key: bytes, partitions: int) -> int:
    """The partition `PARTITIONER` puts a record keyed `key` on, of a topic with `partitions`
    partitions: Java's `Utils.toPositive(Utils.murmur2(key)) % partitions` (aiokafka's port)."""
    return (murmur2(key) & 0x7FFFFFFF) % partitions


#: how long a command waits for Kafka to answer at start before it gives up with one line
CONNECT_TIMEOUT = 10.0


def transient(exc: KafkaException) -> bool:
    return bool(exc.args[0].retriable()) or exc.args[0].code() in TRANSIENT


T = TypeVar("T")


def retry_transient(call: Callable[[], T], timeout: float,
                    again: Callable[[KafkaException], bool] = transient) -> T:
    """`call()`, asked again while it fails with a transient broker error (a topic created a moment
    ago, a coordinator a fresh broker is still creating; or whatever `again` says) for up to
    `timeout` seconds."""
    deadline, pause = time.monotonic() + timeout, 0.1
    while True:
        try:
            return call()
        except KafkaException as exc:
            if not again(exc) or time.monotonic() > deadline:
                raise
        time.sleep(pause)
        pause = min(pause * 2, 1.0)


def with_replication(settings: Settings, brokers: int) -> Settings:
    """The settings with the replication factor and min.insync.replicas decided: as given, else
    following a cluster of `brokers`: 3 replicas and 2 in sync from three brokers on (a broker may
    go away without a write being refused or an acknowledged one lost), every broker and 1 below."""
    rf = settings.replication_factor or min(3, max(brokers, 1))
    isr = settings.min_insync_replicas or (2 if rf >= 3 else 1)
    return settings.model_copy(update={"replication_factor": rf, "min_insync_replicas": isr})


def topic_specs(settings: Settings) -> list[NewTopic]:
    """The topics paylimit owns (settings through `with_replication`), each with its retention set
    explicitly, never the broker's default: the others delete records `PAYLIMIT_TOPIC_RETENTION`
    after the broker appended them (LogAppendTime: a producer's clock cannot stretch or shorten
    that, and the delivered marks' horizon rests on it); limits and rules are compacted (latest
    override per user, latest definition per rule wins) and kept for good."""
    p, rf = settings.partitions, settings.replication_factor
    assert rf is not None, "topic_specs needs settings through with_replication"
    replicas = {"min.insync.replicas": str(settings.min_insync_replicas)}
    deleting = {**replicas, "cleanup.policy": "delete", "message.timestamp.type": "LogAppendTime",
                "retention.ms": str(int(settings.topic_retention.total_seconds() * 1000)),
                "segment.ms": str(int(settings.topic_segment.total_seconds() * 1000))}
    return [
        NewTopic(settings.topic_transactions, p, rf, config=deleting),
        NewTopic(settings.topic_alerts, p, rf, config=deleting),
        NewTopic(settings.topic_alerts_shadow, p, rf, config=deleting),
        NewTopic(settings.topic_dlq, p, rf, config=deleting),
        NewTopic(settings.topic_notifications_dlq, p, rf, config=deleting),
        NewTopic(settings.topic_limits, 1, rf, config={**replicas, **KEEP_COMPACTED}),
        NewTopic(settings.topic_rules, 1, rf, config={**replicas, **KEEP_COMPACTED}),
    ]


#: a compacted topic's config: the latest record per key kept for good (compaction bounds it)
KEEP_COMPACTED = {"cleanup.policy": "compact", "retention.ms": "-1"}


def ensure_topics(settings: Settings, timeout: float = 30.0, extra: Iterable[NewTopic] = ()) -> Settings:
    """Create paylimit's topics (and `extra`) if missing, each admin future checked on its own, and
    wait until every partition of each has a leader: a client that starts next sees them all.
    Returns the settings with their replication decided (`with_replication`, on the brokers the
    cluster lists), for what creates topics later (faust's changelog)."""
    admin = AdminClient(settings.kafka_client_config())
    try:
        metadata = admin.list_topics(timeout=timeout)
    except KafkaException as exc:
        raise InfraError(f"cannot list the topics on Kafka at {settings.kafka_bootstrap_servers}: "
                         f"{exc.args[0].str()}") from None
    settings = with_replication(settings, len(metadata.brokers))
    specs = {t.topic: t for t in [*topic_specs(settings), *extra]}
    wanted = [t for name, t in specs.items() if name not in metadata.topics]
    if wanted:
        for topic, fut in admin.create_topics(wanted, operation_timeout=timeout).items():
            try:
                fut.result()
            except KafkaException as exc:
                if exc.args[0].name() != "TOPIC_ALREADY_EXISTS":
                    raise InfraError(f"cannot create topic {topic}: {exc.args[0].str()}") from None
    deadline = time.monotonic() + timeout
    while missing := [name for name, md in ((n, admin.list_topics(n, timeout=timeout).topics.get(n)) for n in specs)
                      if md is None or md.error is not None or not md.partitions
                      or any(p.leader < 0 for p in md.partitions.values())]:
        if time.monotonic() > deadline:
            raise InfraError(f"topics without a leader after {timeout:.0f} s: {', '.join(missing)}")
        time.sleep(0.2)
    return settings


def wait_for_broker(settings: Settings, timeout: float = 60.0, brokers: int = 1) -> None:
    """Block until the cluster answers a metadata request listing `brokers` brokers, or raise InfraError."""
    refused: list[str] = []

    def on_error(err: KafkaError) -> None:
        # credentials or a certificate the broker refuses: no retry helps, say so at once (a TLS
        # alert from the broker, a missing client certificate say, comes as a transport error)
        if err.code() in (KafkaError._AUTHENTICATION, KafkaError._SSL) or "SSL alert" in err.str():
            refused.append(err.str())

    # log_level 0: while the broker boots, librdkafka would log a "connection refused" line per try
    admin = AdminClient(settings.kafka_client_config(log_level=0, error_cb=on_error))
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        admin.poll(0)  # serves on_error
        if refused:
            raise InfraError(f"Kafka at {settings.kafka_bootstrap_servers} refused the connection: {refused[0]}")
        try:
            md = admin.list_topics(timeout=max(0.1, min(2.0, deadline - time.monotonic())))
            if len(md.brokers) >= brokers:
                return
            last = f"({len(md.brokers)} of {brokers} brokers up)"
        except KafkaException as exc:
            last = exc.args[0].str()
        time.sleep(0.3)
    raise InfraError(f"Kafka at {settings.kafka_bootstrap_servers} did not answer within {timeout:.0f} s"
                     + (f" ({last})" if last else ""))


class LagReader:
    """The lag of consumer group `group` on `topic` (records not yet committed, all partitions),
    read again and again on one consumer: a new client per look costs the broker a connection,
    metadata and a coordinator lookup, which is noise in what a benchmark or the demo watches."""

    def __init__(self, settings: Settings, group: str, topic: str, timeout: float = 10.0, **config: Any) -> None:
        from confluent_kafka import Consumer

        self.group, self.topic, self.timeout = group, topic, timeout
        self.consumer = Consumer(settings.kafka_client_config(**{"group.id": group, "enable.auto.commit": False,
                                                                 **config}))

    def lag(self) -> int:
        """Asked again on transient broker errors (a just-created topic without a leader yet)."""
        from confluent_kafka import TopicPartition

        consumer, topic, timeout = self.consumer, self.topic, self.timeout

        def look() -> int:
            partitions = consumer.list_topics(topic, timeout=timeout).topics[topic].partitions
            lag = 0
            for tp in consumer.committed([TopicPartition(topic, p) for p in partitions], timeout=timeout):
                low, high = consumer.get_watermark_offsets(TopicPartition(topic, tp.partition), timeout=timeout)
                lag += high - (tp.offset if tp.offset >= 0 else low)
            return lag

        try:
            # a lost broker's partitions take up to ~20 s to get new leaders, and the group's
            # coordinator moves: a look (read-only) waits out any broker error for a minute
            return retry_transient(look, max(timeout, 60.0), again=lambda _exc: True)
        except KafkaException as exc:
            raise InfraError(f"cannot read the lag of {self.group} on {topic}: {exc.args[0].str()}") from None

    def close(self) -> None:
        self.consumer.close()



@dataclass(frozen=True)
class ClusterHealth:
    brokers: frozenset[int]  # the brokers the cluster lists: registered, not fenced
    under_replicated: int  # partitions, all topics, with fewer replicas in sync than assigned
    offline: int  # partitions without a leader


class ClusterWatch:
    """The cluster's brokers, leaders and replica sets, read on one kept admin client (the demo
    looks twice a second)."""

    def __init__(self, settings: Settings, timeout: float = 5.0) -> None:
        # log_level 0: a broker that is down would print a "connection refused" line per try
        self.admin, self.timeout = AdminClient(settings.kafka_client_config(log_level=0)), timeout

    def health(self) -> ClusterHealth:
        md = self.admin.list_topics(timeout=self.timeout)
        partitions = [p for t in md.topics.values() for p in t.partitions.values()]
        return ClusterHealth(frozenset(md.brokers), sum(len(p.isrs) < len(p.replicas) for p in partitions),
                             sum(p.leader < 0 for p in partitions))

    def leaders(self, topic: str) -> dict[int, int]:
        """Partition -> the broker leading it (-1: none)."""
        md = self.admin.list_topics(topic, timeout=self.timeout)
        return {p.id: p.leader for p in md.topics[topic].partitions.values()}

    def busiest(self, topic: str) -> int:
        """The broker leading the most partitions of `topic` (the one whose loss moves the most)."""
        counts: dict[int, int] = {}
        for leader in self.leaders(topic).values():
            if leader >= 0:
                counts[leader] = counts.get(leader, 0) + 1
        return max(sorted(counts), key=lambda b: counts[b])


Change = tuple[int, bytes | None, bytes | None]  # partition, key, value (None: deleted)


def read_to_end(settings: Settings, topic: str, starts: dict[int, int] | None, group: str,
                timeout: float = 60.0) -> tuple[list[Change], dict[int, int]]:
    """The records of partitions of `topic` from `starts` (an offset, or OFFSET_BEGINNING; None:
    every partition from its beginning) to the end each has now, in offset order per partition,
    and each partition's last offset read (absent: nothing to read); read as consumer group
    `group`, which it never commits."""
    consumer = Consumer(settings.kafka_client_config(**{
        "group.id": group, "enable.auto.commit": False,
        "enable.auto.offset.store": False, "enable.partition.eof": True}))
    changes: list[Change] = []
    last: dict[int, int] = {}
    deadline = time.monotonic() + timeout
    try:
        if starts is None:
            starts = dict.fromkeys(consumer.list_topics(topic, timeout=timeout).topics[topic].partitions,
                                   OFFSET_BEGINNING)
        pending = {}
        for partition, start in starts.items():
            tp = TopicPartition(topic, partition)  # faust creates the changelog moments before the first assignment
            low, high = retry_transient(lambda: consumer.get_watermark_offsets(tp, timeout=10),
                                        max(deadline - time.monotonic(), 0.1))
            if high > max(low, start):
                pending[partition] = high
        consumer.assign([TopicPartition(topic, p, starts[p]) for p in pending])
        while pending:
            if time.monotonic() > deadline:
                raise InfraError(f"timed out restoring {topic} partitions {sorted(pending)}")
            messages = consumer.consume(10_000, 0.05)  # returns when full or after the 0.05 s
            for msg in messages:
                partition = msg.partition() or 0
                error = msg.error()
                if error is not None:
                    if error.code() == KafkaError._PARTITION_EOF and (msg.offset() or 0) >= pending.get(partition, 0):
                        pending.pop(partition, None)  # at the end it had (one past a compacted-away tail)
                        continue
                    if error.fatal():
                        raise InfraError(f"cannot restore {topic}[{partition}]: {error}")
                    continue
                offset = msg.offset() or 0
                if partition not in pending or offset >= pending[partition]:
                    pending.pop(partition, None)  # past the end it had: faust's recovery reads the rest
                    continue
                changes.append((partition, msg.key(), msg.value()))
                last[partition] = offset
                if offset == pending[partition] - 1:
                    pending.pop(partition)
        return changes, last
    except KafkaException as exc:
        raise InfraError(f"cannot restore {topic}: {exc}") from None
    finally:
        consumer.close()
