"""Kafka, as the dashboard sees it: end offsets (events in), consumer lag, and which users are active.

Blocking confluent-kafka calls; the collector runs them in a thread. One AdminClient answers the
end offsets in batched requests; the committed offsets of each consumer group come from a consumer
of that group that never joins it (`paylimit.kafka.LagReader`'s `committed()`). Not the
AdminClient's list_consumer_group_offsets: when the group's coordinator is not ready yet (a fresh
broker still creating `__consumer_offsets`) its NOT_COORDINATOR answer makes librdkafka (up to
2.16 at least) dereference the group handle an AdminClient does not have: a segfault in rdk:main.
`ActiveUsers` reads the transactions topic from the records produced in the last 48 hours (Kafka's produce timestamps, so a replayed
scenario of past days is included) and notes, per succeeded
transaction, the user and its local date, so the dashboard knows whose usage to ask the worker
for, and on which day. That is a light parse, not the worker's validation: the worker's usage
answer is what the page shows.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import orjson
from confluent_kafka import Consumer, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient, OffsetSpec

from paylimit.kafka import LagReader
from paylimit.settings import Settings

LOOKBACK_S = 48 * 3600  # "today" in any zone (UTC-12 .. UTC+14) started less than 48 h ago


@dataclass(frozen=True)
class Offsets:
    produced: int  # sum of the transactions topic's end offsets
    worker_lag: int  # transactions not yet committed by the workers' group
    notifier_lag: int  # alerts not yet committed by the notifier's group


class KafkaProbe:
    """End offsets and committed offsets of paylimit's two consumer groups."""

    def __init__(self, settings: Settings, timeout: float = 3.0) -> None:
        self.settings = settings
        self.timeout = timeout
        self.admin: AdminClient | None = None
        self.lags: tuple[LagReader, LagReader] | None = None  # the workers' group, the notifier's
        # one look at a time: a look the collector gave up on (its timeout) may still run in its thread
        self.lock = threading.Lock()

    def start(self) -> None:
        s = self.settings
        self.admin = AdminClient(s.kafka_client_config(log_level=0))
        self.lags = (LagReader(s, s.app_id, s.topic_transactions, self.timeout, log_level=0),
                     LagReader(s, s.notifier_group_id, s.topic_alerts, self.timeout, log_level=0))

    def stop(self) -> None:
        with self.lock:
            for reader in self.lags or ():
                reader.close()
            self.lags = None

    def _ends(self, topic: str) -> dict[int, int]:
        assert self.admin is not None
        md = self.admin.list_topics(topic, timeout=self.timeout).topics[topic]
        if md.error is not None:
            raise KafkaException(md.error)
        futures = self.admin.list_offsets({TopicPartition(topic, p): OffsetSpec.latest() for p in md.partitions},
                                          request_timeout=self.timeout)
        return {tp.partition: fut.result().offset for tp, fut in futures.items()}

    def offsets(self) -> Offsets:
        """InfraError (a group's coordinator not ready yet, say) or KafkaException when Kafka does not answer."""
        with self.lock:
            assert self.lags is not None
            produced = sum(self._ends(self.settings.topic_transactions).values())
            return Offsets(produced=produced, worker_lag=self.lags[0].lag(), notifier_lag=self.lags[1].lag())


def succeeded_local_date(raw: bytes | None, default_zone: str) -> str | None:
    """The local date (ISO) of a succeeded transaction record, or None for anything else."""
    try:
        data = orjson.loads(raw or b"")
    except orjson.JSONDecodeError:
        return None
    if not isinstance(data, dict) or data.get("status") != "succeeded":
        return None
    try:
        at = datetime.fromisoformat(data["occurred_at"])
        zone = ZoneInfo(data.get("timezone") or default_zone)
    except (KeyError, TypeError, ValueError, ZoneInfoNotFoundError):
        return None
    if at.tzinfo is None:
        return None
    return at.astimezone(zone).date().isoformat()


UserDay = tuple[str, str]  # (user_id, local date ISO)


class ActiveUsers:
    """A thread reading the transactions topic: the (user, local day) pairs seen, and those seen since last asked."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.dirty: set[UserDay] = set()  # taken every second: at most one second of pairs
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.thread: threading.Thread | None = None
        self.error: str | None = None

    def start(self) -> None:
        self.thread = threading.Thread(target=self.run, name="dashboard-active-users", daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.stopping.set()
        if self.thread:
            self.thread.join(timeout=5)

    def take_dirty(self) -> set[UserDay]:
        """(user, day) pairs with a transaction since the previous call (their usage changed)."""
        with self.lock:
            out, self.dirty = self.dirty, set()
        return out

    def _note(self, pair: UserDay) -> None:
        with self.lock:
            self.dirty.add(pair)

    def run(self) -> None:
        topic = self.settings.topic_transactions
        consumer = Consumer(self.settings.kafka_client_config(**{
            "group.id": f"{self.settings.app_id}-dashboard", "enable.auto.commit": False, "log_level": 0}))
        try:
            while not self.stopping.is_set():
                try:
                    self._assign(consumer, topic)
                    break
                except KafkaException as exc:
                    self.error = str(exc.args[0])
                    self.stopping.wait(2)
            while not self.stopping.is_set():
                for msg in consumer.consume(1000, timeout=0.5):
                    key = msg.key() if msg.error() is None else None
                    day = succeeded_local_date(msg.value(), self.settings.default_timezone) if key else None
                    if key and day:
                        self._note((key.decode("utf-8", "replace") if isinstance(key, bytes) else str(key), day))
        finally:
            consumer.close()

    def _assign(self, consumer: Consumer, topic: str) -> None:
        since_ms = int((time.time() - LOOKBACK_S) * 1000)
        partitions = consumer.list_topics(topic, timeout=5).topics[topic].partitions
        wanted = [TopicPartition(topic, p, since_ms) for p in partitions]
        consumer.assign(consumer.offsets_for_times(wanted, timeout=5))
        self.error = None
