"""The notifier service: consume `payments.alerts`, deliver each alert exactly once, then store its offset.

A confluent-kafka consumer (auto-commit on, `enable.auto.offset.store=False`) stores a message's
offset only after its alert was delivered or recognised as already delivered, so a kill at any
moment replays at most the alerts in flight, and `Delivery` drops those repeats. A record that is
not a `LimitAlert` is logged, counted and skipped. Redis or Kafka trouble is waited out with capped
exponential backoff; an alert is never skipped. A webhook's transient failure is retried with its
own, longer backoff until the webhook gives up (`notifier.webhook`); then, or at once on a
permanent failure, the alert goes to the notifications' dead letters and is recorded all the same,
so a bad webhook holds the alerts behind it up for `PAYLIMIT_WEBHOOK_RETRY_FOR` at most. Webhook
failures are counted by kind in `NotifierStats`. `run()` loops until `stop()`, so a test can drive
the service from a thread.

Falling behind the topic's retention: the notifier knows the offset it should read next on each
partition (the group's committed one when the partition is assigned, then one past each record);
when the broker deleted records from there on before it read them (the partition's low
watermark is past it, at assignment or as the next record comes), it logs an error naming the
partition and the offsets lost, and counts them (`lost_to_retention`): alerts lost that way
never reach the record, and nothing else would say so.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import redis
from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition
from confluent_kafka.admin import AdminClient
from prometheus_client import Histogram
from pydantic import ValidationError

from notifier.delivery import Attempt, Delivery, Outcome
from notifier.webhook import Webhook, WebhookFailure
from paylimit.contracts import LimitAlert
from paylimit.notification_record import record_key, redis_client
from paylimit.settings import Settings

log = logging.getLogger("paylimit.notifier")

BACKOFF_START = 0.1
BACKOFF_CAP = 2.0
WEBHOOK_BACKOFF_START = 0.5
WEBHOOK_BACKOFF_CAP = 30.0  # also caps a Retry-After
#: `alive()` is False once the loop has not turned for this long beyond the longest wait it makes
#: on purpose (a webhook's backoff) and one attempt (within the lease: a POST takes at most half of
#: it, a dead letter a quarter): it is stuck in a call that never returns
STUCK_AFTER = 15.0


@dataclass
class NotifierStats:
    delivered: int = 0
    fenced: int = 0  # attempts whose lease ran out before their record: not recorded, tried again
    duplicates_dropped: int = 0
    invalid: int = 0
    retries: int = 0
    webhook_failures: Counter[str] = field(default_factory=Counter)  # failed POSTs by kind (notifier.webhook)
    webhook_dead_lettered: int = 0  # alerts recorded but given up on by the webhook
    lost_to_retention: int = 0  # alerts the broker deleted (retention) before this notifier read them

    def as_dict(self) -> dict[str, Any]:
        return {**vars(self), "webhook_failures": dict(self.webhook_failures)}


class Backoff:
    """Exponential backoff, capped; `reset()` after a success."""

    def __init__(self, start: float = BACKOFF_START, cap: float = BACKOFF_CAP) -> None:
        self.start, self.cap, self.current = start, cap, start

    def next(self) -> float:
        delay, self.current = self.current, min(self.current * 2, self.cap)
        return delay

    def reset(self) -> None:
        self.current = self.start


class Notifier:
    """Delivers every alert on `settings.topic_alerts` exactly once; `start()`, `run()`, `stop()`."""

    def __init__(self, settings: Settings, *, poll_timeout: float = 0.5) -> None:
        self.settings = settings
        self.poll_timeout = poll_timeout
        self.stats = NotifierStats()
        self._stop = threading.Event()
        self._consumer: Consumer | None = None
        self._delivery: Delivery | None = None
        self._kafka_error: str | None = None
        self._next: dict[int, int] = {}  # partition -> the offset to read next (see the docstring)
        self._turned = time.monotonic()  # the loop's last turn (`alive`)
        self._probe: AdminClient | None = None  # `ready`'s own client: the consumer's calls block while it polls
        # from the alert's detection by the worker to its record (a metric: `notifier.server`)
        self.latency = Histogram("paylimit_notifier_delivery_latency_seconds", "Time from an alert's detection "
                                 "by the worker to its delivery (recorded, and POSTed if a webhook is set)",
                                 registry=None, buckets=(.01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300))

    def alive(self) -> bool:
        """The consume-and-deliver loop turns (a health check: `/healthz`)."""
        limit = WEBHOOK_BACKOFF_CAP + self.settings.notifier_lease.total_seconds() + STUCK_AFTER
        return time.monotonic() - self._turned < limit

    def ready(self) -> tuple[bool, dict[str, str]]:
        """Kafka and Redis answer (`/readyz`): (ready, what does not answer and why)."""
        problems: dict[str, str] = {}
        delivery = self._delivery
        if self._consumer is None or delivery is None:
            return False, {"notifier": "not started"}
        if self._probe is None:
            self._probe = AdminClient(self.settings.kafka_client_config())
        try:
            self._probe.list_topics(self.settings.topic_alerts, timeout=2)
        except KafkaException as exc:
            problems["kafka"] = exc.args[0].str() if exc.args and isinstance(exc.args[0], KafkaError) else str(exc)
        try:
            delivery.redis.ping()
        except redis.RedisError as exc:
            problems["redis"] = type(exc).__name__
        return not problems, problems

    def start(self) -> None:
        """Open the consumer and the Redis client; idempotent."""
        if self._consumer is not None:
            return
        self.settings.notifications_log.parent.mkdir(parents=True, exist_ok=True)
        self._delivery = Delivery(self.settings, redis_client(self.settings))
        conf = self.settings.kafka_client_config(**{
            "group.id": self.settings.notifier_group_id,
            "auto.offset.reset": "earliest",
            "enable.auto.commit": True,
            # commit stored offsets as often as the workers do: a kill replays (and drops) less, lag drains fast
            "auto.commit.interval.ms": max(100, int(self.settings.commit_interval * 1000)),
            "enable.auto.offset.store": False,
            # a killed notifier's partitions move on within seconds, not librdkafka's default 45 s
            "session.timeout.ms": int(self.settings.session_timeout * 1000),
            "heartbeat.interval.ms": 1000,
            # an alert may be retried for the webhook's retry time without a poll: stay in the group meanwhile
            "max.poll.interval.ms": max(300_000, int((self.settings.webhook_retry_for.total_seconds()
                                                      + 2 * self.settings.webhook_timeout + 60) * 1000)),
            "error_cb": self._on_kafka_error,
        })
        self._consumer = Consumer(conf)
        self._consumer.subscribe([self.settings.topic_alerts], on_assign=self._on_assign, on_revoke=self._on_revoke,
                                 on_lost=self._on_revoke)
        hook = self._delivery.webhook
        log.info("notifier %s (%s): group %s, topic %s, record %s, log %s, webhook %s", self._delivery.token[:8],
                 self._delivery.name, self.settings.notifier_group_id, self.settings.topic_alerts,
                 record_key(self.settings), self.settings.notifications_log, hook.origin if hook else "none")

    def stop(self) -> None:
        """Ask `run()` to return after the message in hand (an unfinished one is replayed later)."""
        self._stop.set()

    @property
    def stopped(self) -> bool:
        return self._stop.is_set()

    def run(self) -> None:
        """Consume and deliver until `stop()`; closes the consumer (committing stored offsets) at the end."""
        self.start()
        assert self._consumer is not None
        backoff = Backoff()
        beat = 0.0
        try:
            while not self._stop.is_set():
                self._turned = time.monotonic()
                if self.settings.notifier_heartbeat and time.monotonic() - beat >= 1.0:
                    # a health check reads its age; a loop stuck retrying a delivery stops touching it
                    self.settings.notifier_heartbeat.touch()
                    beat = time.monotonic()
                msg = self._consumer.poll(self.poll_timeout)
                if msg is None:
                    continue
                err = msg.error()
                if err is not None:
                    self._on_poll_error(err, backoff)
                    continue
                backoff.reset()
                self.handle(msg)
        finally:
            self._consumer.close()
            self._consumer = None
            log.info("notifier stopped: %s", self.stats.as_dict())

    def handle(self, msg: Message) -> None:
        """Deliver one alert record (or skip an invalid one), then store its offset."""
        partition, offset = msg.partition() or 0, msg.offset() or 0
        if offset > self._next.get(partition, offset):
            self._check_retention(partition, offset)
        self._next[partition] = offset + 1
        alert = self._parse(msg)
        if alert is not None and not self._deliver(alert):
            return  # stopped before it was delivered: its offset stays unstored, it is replayed
        self._store(msg)

    def _parse(self, msg: Message) -> LimitAlert | None:
        value = msg.value()
        try:
            if value is None:
                raise ValueError("record has no value")
            alert = LimitAlert.model_validate_json(value)
        except ValidationError as exc:
            first = exc.errors()[0]
            reason = f"{'.'.join(str(p) for p in first['loc']) or 'record'}: {first['msg']}"
        except ValueError as exc:
            reason = str(exc)
        else:
            return alert
        self.stats.invalid += 1
        log.warning("skipping invalid alert record %s[%s]@%s: %s", msg.topic(), msg.partition(), msg.offset(), reason)
        return None

    def _deliver(self, alert: LimitAlert) -> bool:
        """Try until delivered or recognised as delivered; False only if stopped first."""
        assert self._delivery is not None
        backoff = Backoff()
        hook_backoff = Backoff(WEBHOOK_BACKOFF_START, WEBHOOK_BACKOFF_CAP)
        while not self._stop.is_set():
            self._turned = time.monotonic()
            try:
                attempt = self._delivery.deliver(alert)
            except WebhookFailure as failure:
                self._stop.wait(self._webhook_retry(alert, failure, hook_backoff))
                continue
            except (redis.RedisError, OSError, KafkaException) as exc:
                self.stats.retries += 1
                delay = backoff.next()
                log.warning("delivery of alert %s failed (%s: %s); retrying in %.1fs", alert.alert_id,
                            type(exc).__name__, str(exc).splitlines()[0] if str(exc) else "", delay)
                self._stop.wait(delay)
                continue
            if attempt.outcome is Outcome.BUSY:
                # another notifier holds it, or a dead one whose lease has not run out yet
                self._stop.wait(min(attempt.retry_after, BACKOFF_CAP))
                continue
            if attempt.outcome is Outcome.FENCED:
                self.stats.fenced += 1  # reserve afresh: delivered again, or found delivered by another
                continue
            self._count(alert, attempt)
            return True
        return False

    def _webhook_retry(self, alert: LimitAlert, failure: WebhookFailure, backoff: Backoff) -> float:
        """Count a transient webhook failure and say how long to wait before the next POST."""
        hook = self._webhook()
        self.stats.retries += 1
        self.stats.webhook_failures[failure.kind] += 1
        left = max(hook.retry_left(), 0.0)
        wanted = failure.retry_after if failure.retry_after is not None else backoff.next()
        delay = min(wanted, WEBHOOK_BACKOFF_CAP, left)  # the last try comes as the retry time runs out
        log.warning("webhook %s: alert %s not taken (%s: %s); POST %d, next in %.1fs, given up in %.1fs",
                    hook.origin, alert.alert_id, failure.kind, failure.reason, hook.attempts(alert.alert_id),
                    delay, left)
        return delay

    def _webhook(self) -> Webhook:
        assert self._delivery is not None and self._delivery.webhook is not None
        return self._delivery.webhook

    def _count(self, alert: LimitAlert, attempt: Attempt) -> None:
        outcome, failure = attempt.outcome, attempt.webhook_failure
        if failure is not None:
            self.stats.webhook_failures[failure.kind] += 1
            self.stats.webhook_dead_lettered += 1
            hook = self._webhook()
            posts = hook.attempts(alert.alert_id)
            log.warning("webhook %s: alert %s given up after %d POST%s (%s: %s); dead-lettered to %s and recorded; "
                        "`paylimit webhook redeliver` sends it again", hook.origin, alert.alert_id, posts,
                        "s" if posts != 1 else "", failure.kind, failure.reason, self.settings.topic_notifications_dlq)
        if outcome is Outcome.DUPLICATE:
            self.stats.duplicates_dropped += 1
            log.info("duplicate alert %s (user %s, %s) dropped", alert.alert_id, alert.user_id, alert.local_date)
            return
        self.stats.delivered += 1
        self.latency.observe(max(0.0, (datetime.now(timezone.utc) - alert.detected_at).total_seconds()))
        log.info("%s alert %s: user %s %s %s (%s of %s) on %s (%s)%s", outcome.value, alert.alert_id, alert.user_id,
                 "went over" if alert.tier == "alert" else "is near", alert.rule, alert.value, alert.limit,
                 alert.local_date, alert.timezone, " late" if alert.late else "")

    def _store(self, msg: Message) -> None:
        assert self._consumer is not None
        try:
            self._consumer.store_offsets(message=msg)
        except KafkaException as exc:
            # e.g. the partition was revoked meanwhile: the new owner replays it and drops the duplicate
            log.warning("could not store offset %s[%s]@%s: %s", msg.topic(), msg.partition(), msg.offset(), exc)

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        try:
            committed = consumer.committed(partitions, timeout=10)
        except KafkaException as exc:
            log.warning("could not read the committed offsets of %s: %s", self.settings.topic_alerts, exc)
            return
        for tp in committed:
            if tp.offset >= 0:  # a group with no commit yet starts at the earliest record there is
                self._next[tp.partition] = tp.offset
                self._check_retention(tp.partition, None)

    def _on_revoke(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        for tp in partitions:
            self._next.pop(tp.partition, None)

    def _check_retention(self, partition: int, seen: int | None) -> None:
        """Report the records before `seen` (or the low watermark) that the broker deleted unread."""
        assert self._consumer is not None
        expected, topic = self._next[partition], self.settings.topic_alerts
        try:
            low, _ = self._consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=10, cached=False)
        except KafkaException as exc:
            log.warning("could not read the low watermark of %s[%d]: %s", topic, partition, exc)
            return
        lost = min(low, seen if seen is not None else low) - expected
        if lost > 0:
            self.stats.lost_to_retention += lost
            self._next[partition] = expected + lost
            log.error("notifier fell behind the retention of %s[%d]: %d alert record%s (offsets %d to %d) deleted by "
                      "the broker before this notifier read them, never delivered; the topic keeps records for "
                      "PAYLIMIT_TOPIC_RETENTION", topic, partition, lost, "s" if lost != 1 else "", expected,
                      expected + lost - 1)

    def _on_poll_error(self, err: KafkaError, backoff: Backoff) -> None:
        if err.code() == KafkaError._PARTITION_EOF:
            return
        delay = backoff.next()
        log.warning("kafka: %s; retrying in %.1fs", err.str(), delay)
        self._stop.wait(delay)

    def _on_kafka_error(self, err: Any) -> None:
        # librdkafka retries connections itself; log each distinct error once until it changes
        text = err.str() if isinstance(err, KafkaError) else str(err)
        if text != self._kafka_error:
            self._kafka_error = text
            log.warning("kafka: %s", text)
