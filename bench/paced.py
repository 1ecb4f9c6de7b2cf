"""A paced producer: transactions at a fixed rate for a fixed time, each one's produce time kept.

A share of the traffic goes to "heavy" users who each get exactly `limit + 1` successful
transactions in a row of their own, so a user crosses the limit every few dozen records for the
whole run; the rest goes to the normal population. `produced_at` maps every successful
transaction id to the wall clock just before its `produce()`: the start of its alert latency
(the producer's linger is part of it). On a machine whose cores the pipeline and the broker share,
the generator keeps its own cost down: no per-record delivery callback, a sleep between bursts.
"""

from __future__ import annotations

import random
import threading
import time
from typing import Any, Callable

from confluent_kafka import KafkaError, Message, Producer

from bench.config import LIMIT
from bench.load import new_transaction_id, status_of, transaction_value, user_name
from paylimit.errors import InfraError
from paylimit.kafka import producer_config
from paylimit.settings import Settings

PACED_PRODUCER: dict[str, Any] = {
    "acks": "all",
    "enable.idempotence": True,
    # a payment service's producer batches a little too. librdkafka sends one produce request per
    # partition: at 5 ms this generator alone made 700-850 requests a second to the broker sharing
    # the cores; at 10 ms about half, and the alert latency's p95 and p99 (which include the linger)
    # were lower in three paired runs (p99 65/61/51 ms against 73/63/61)
    "linger.ms": 10,
    "delivery.report.only.error": True,
}


class PacedProducer:
    """`run()` sends at `rate` tx/s for `duration` s (or until `stop()`), then flushes."""

    def __init__(self, settings: Settings, rate: float, duration: float, users: int, heavy_share: float,
                 tag: str, seed: int = 11, on_progress: Callable[[int], None] = lambda _n: None) -> None:
        self.settings = settings
        self.rate = rate
        self.duration = duration
        self.users = users
        self.heavy_share = heavy_share
        self.tag = tag
        self.rng = random.Random(seed)
        self.on_progress = on_progress
        self.produced_at: dict[str, float] = {}
        self.sent = 0
        self.delivered = 0  # acknowledged, known once `run()` returns
        self.failed = 0
        self.seconds = 0.0
        self._heavy = 0
        self._error: str | None = None
        self._stop = threading.Event()

    def stop(self) -> None:
        self._stop.set()

    @property
    def achieved_rate(self) -> float:
        return self.delivered / self.seconds if self.seconds > 0 else 0.0

    def _next(self) -> tuple[str, str, bytes]:
        """(transaction id, user id, record value) of the next transaction to send."""
        rng = self.rng
        if rng.random() < self.heavy_share:
            user, status = f"heavy-{self.tag}-{self._heavy // (LIMIT + 1):06d}", "succeeded"
            self._heavy += 1
        else:
            user, status = f"{user_name(rng.randrange(self.users))}-{self.tag}", status_of(rng)
        tx_id = new_transaction_id(rng)
        return tx_id, user, transaction_value(rng, user, time.time(), status, tx_id)

    def _failed(self, err: KafkaError, _msg: Message) -> None:
        # librdkafka reports failed deliveries only (delivery.report.only.error): a Python callback
        # per record costs this process CPU on the cores the pipeline shares (measured: ~4 % of a core)
        self.failed += 1
        self._error = err.str()

    def _send(self, producer: Producer, topic: str, user: str, value: bytes) -> None:
        while True:
            try:
                producer.produce(topic, value, user.encode())
                break
            except BufferError:
                producer.poll(0.01)
        self.sent += 1

    def run(self) -> None:
        producer = Producer(producer_config(self.settings, **PACED_PRODUCER, on_delivery=self._failed))
        topic = self.settings.topic_transactions
        # the clock starts once the producer is connected (metadata, idempotent producer id): the
        # first record is sent and acknowledged before it, outside the rate and the latencies
        _tx_id, user, value = self._next()
        self._send(producer, topic, user, value)
        producer.flush(30)
        began = time.monotonic()
        while not self._stop.is_set():
            elapsed = time.monotonic() - began
            if elapsed >= self.duration:
                break
            due = int(elapsed * self.rate) + 1
            burst = due - self.sent
            while self.sent < due:
                tx_id, user, value = self._next()
                self.produced_at[tx_id] = time.time()
                self._send(producer, topic, user, value)
            self.on_progress(max(burst, 0))
            producer.poll(0)  # serves failure reports
            time.sleep(0.001)
        self.seconds = time.monotonic() - began
        left = producer.flush(60)
        self.delivered = self.sent - self.failed - left
        if left or self._error:
            raise InfraError(f"paced producer on {topic}: {left} undelivered, error {self._error}")
