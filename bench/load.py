"""Pre-loading a topic fast with confluent-kafka: valid transactions keyed by user_id.

Records are contract-valid `Transaction` JSON built from a template (the bench's records are
known-good; `tests/test_bench` checks one against the contract), spread over the 24 hours before
the load with a few minutes of disorder, so they fall on two local days in Asia/Kolkata and none
is too late or in the future. The producer partitions as every paylimit producer does
(`paylimit.kafka.PARTITIONER`, murmur2 over the key: the Java clients' default).
"""

from __future__ import annotations

import random
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Callable

from confluent_kafka import KafkaError, Message, Producer

from paylimit.errors import InfraError
from paylimit.kafka import ensure_topics, producer_config
from paylimit.settings import Settings

LOAD_PRODUCER: dict[str, Any] = {
    "acks": "all",
    "linger.ms": 20,
    "batch.size": 1_000_000,
    "compression.type": "lz4",
    "queue.buffering.max.messages": 500_000,
}
CATEGORIES = ("food", "travel", "shopping", "bills", "p2p", "fuel")
SPREAD = 24 * 3600.0  # seconds of event time the load covers
DISORDER = 300.0  # seconds an event may be older than its position says


def new_transaction_id(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def transaction_value(rng: random.Random, user_id: str, occurred_at: float, status: str,
                      transaction_id: str | None = None) -> bytes:
    """One valid transaction record (contracts.Transaction as JSON), dated `occurred_at` (epoch s)."""
    tx_id = transaction_id or new_transaction_id(rng)
    cents = rng.randint(100, 500_000)
    at = datetime.fromtimestamp(occurred_at, UTC).isoformat(timespec="milliseconds")
    return (
        f'{{"schema_version":1,"transaction_id":"{tx_id}",'
        f'"user_id":"{user_id}","amount":"{cents // 100}.{cents % 100:02d}","currency":"INR",'
        f'"status":"{status}","occurred_at":"{at}","merchant_id":"m-{rng.randrange(10_000):04d}",'
        f'"category":"{CATEGORIES[rng.randrange(len(CATEGORIES))]}"}}'
    ).encode()


def status_of(rng: random.Random) -> str:
    r = rng.random()
    return "succeeded" if r < 0.9 else "failed" if r < 0.97 else "declined"


def user_name(index: int) -> str:
    return f"user-{index:07d}"


@dataclass
class LoadResult:
    topic: str
    records: int
    users: int
    partitions: int
    seconds: float
    #: distinct users after each 1 % of the records (and at the end), to estimate the users a partial consumer saw
    distinct_users: list[int] = field(default_factory=list)

    @property
    def active_users(self) -> int:
        return self.distinct_users[-1] if self.distinct_users else 0

    def active_users_at(self, fraction: float) -> int:
        """Distinct users among the first `fraction` of the records (partitions are consumed evenly)."""
        if not self.distinct_users:
            return 0
        if fraction <= 0:
            return 0
        n = len(self.distinct_users)
        return self.distinct_users[min(max(round(fraction * n) - 1, 0), n - 1)]

    def as_dict(self) -> dict:
        return {"topic": self.topic, "records": self.records, "users": self.users, "active_users": self.active_users,
                "partitions": self.partitions, "seconds": round(self.seconds, 2),
                "events_per_s": round(self.records / self.seconds, 1) if self.seconds else 0.0}


class _Delivery:
    def __init__(self) -> None:
        self.delivered = 0
        self.error: str | None = None

    def __call__(self, err: KafkaError | None, _msg: Message) -> None:
        if err is not None:
            self.error = err.str()
        else:
            self.delivered += 1


def preload(settings: Settings, records: int, users: int, seed: int = 7,
            on_progress: Callable[[int], None] = lambda _n: None) -> LoadResult:
    """Create `settings.topic_transactions` and fill it with `records` transactions over `users` users."""
    ensure_topics(settings)
    rng = random.Random(seed)
    end = time.time() - 120.0
    start = end - SPREAD
    seen = bytearray(users)
    distinct = 0
    curve: list[int] = []
    step = max(records // 100, 1)
    report = _Delivery()
    began = time.monotonic()
    producer = Producer(producer_config(settings, **LOAD_PRODUCER))
    for i in range(records):
        u = rng.randrange(users)
        if not seen[u]:
            seen[u], distinct = 1, distinct + 1
        when = start + SPREAD * i / records - rng.random() * DISORDER
        user = user_name(u)
        value = transaction_value(rng, user, when, status_of(rng))
        while True:
            try:
                producer.produce(settings.topic_transactions, value, user.encode(), on_delivery=report)
                break
            except BufferError:  # the local queue is full: serve delivery reports, then retry
                producer.poll(0.05)
        producer.poll(0)
        if (i + 1) % step == 0:
            curve.append(distinct)
            on_progress(step)
    if not curve or curve[-1] != distinct or records % step:
        curve.append(distinct)
    left = producer.flush(120)
    if left or report.error:
        raise InfraError(f"pre-load of {settings.topic_transactions}: {left} undelivered, error {report.error}")
    return LoadResult(settings.topic_transactions, records, users, settings.partitions,
                      time.monotonic() - began, curve)
