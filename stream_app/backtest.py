"""The back-test: what a set of limit rules would have raised over past transactions, by the worker's
own evaluation (`stream_app.handling.handle`), offline.

`Replay` holds one rule set's state (every user's days in memory, each partition's stream time) and
feeds it records in each partition's offset order, as a worker would count them: the same
validation, de-duplication, lateness and tiers, so its alerts are the ones the live system raises
for the same records and rules (their `detected_at` is the crossing transaction's `occurred_at`:
a replay is deterministic). `read_topic` reads the transactions topic to the end it has now with a
plain assigned consumer that never commits (a throwaway group id: no offsets, no state shared with
the live workers); `read_events` reads a simulator's `events.jsonl`. `compare` sets the alerts of
proposed rules beside those of the rules in force, per rule, tier and local day.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Callable, Iterator, Sequence

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, TopicPartition

from paylimit.contracts import LimitAlert, SentRecord
from paylimit.errors import ConfigError, InfraError
from paylimit.rules import Rule
from paylimit.settings import Settings
from stream_app.alerts import alert_for, fired_in_shadow
from stream_app.counting import Outcome, expired
from stream_app.handling import handle
from stream_app.reader import Record
from stream_app.state import DayCount
from stream_app.validation import validate

BATCH = 10_000
DAY = 86400.0
STALLED = 60.0  # seconds without a record before the replay says the broker is away


class Replay:
    """One rule set evaluated over records fed in each partition's offset order."""

    def __init__(self, settings: Settings, rules: Sequence[Rule], limit_of: Callable[[str], int],
                 now: datetime) -> None:
        self.settings, self.rules, self.limit_of, self.now = settings, list(rules), limit_of, now
        self.days: dict[str, DayCount] = {}
        self.stream_time: dict[int, float] = {}
        self.alerts: dict[str, LimitAlert] = {}  # alert_id -> the alert, as first raised
        self.cleaned: dict[int, float] = {}  # partition -> stream time of its last cleanup

    def feed(self, record: Record) -> None:
        handled = handle(record, self.days.get, self.stream_time.get(record.partition), self.limit_of, self.now,
                         self.settings, self.rules)
        decision = handled.decision
        if decision is None or handled.key is None:
            return  # a dead letter
        if decision.day is not None:
            self.days[handled.key] = decision.day
        if decision.stream_time is not None:
            self.stream_time[record.partition] = decision.stream_time
            self._drop_expired(record.partition, decision.stream_time)
        if decision.outcome is Outcome.CROSSED and decision.alert_day is not None:
            # the crossing transaction's time: parsed again only for the few records that fire
            at = validate(record.value, self.now, self.settings).occurred_at
            for rule, tier in decision.fired:
                if fired_in_shadow(decision.alert_day, rule, tier):
                    continue  # a shadow rule's alerts are never delivered (`paylimit shadow report`)
                alert = alert_for(decision.alert_day, at, rule, tier)
                self.alerts.setdefault(alert.alert_id, alert)


    def _drop_expired(self, partition: int, stream_time: float) -> None:
        """As the worker does, once per day of stream time per partition: forget the days past
        twice the retention (a long replay's memory stays that of a few days)."""
        if stream_time < self.cleaned.get(partition, float("-inf")) + DAY:
            return
        self.cleaned[partition] = stream_time
        for key in [k for k, d in self.days.items()
                    if d.partition == partition and expired(d.end, stream_time, self.settings.retention)]:
            del self.days[key]


def read_events(path: Path) -> list[Record]:
    """The records of a simulator's sent-records file (`events.jsonl`), in offset order per partition."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
        sent = [SentRecord.model_validate_json(line) for line in lines if line.strip()]
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ConfigError(f"cannot read the events file {path}: {str(exc).splitlines()[0]}") from None
    return [Record("events", r.partition, r.offset, r.key.encode() if r.key is not None else None, r.value.encode())
            for r in sorted(sent, key=lambda r: (r.partition, r.offset))]


def topic_size(settings: Settings) -> tuple[Consumer, dict[int, tuple[int, int]]]:
    """A consumer that never commits, on a group of its own, and partition -> (low, high) of the
    transactions topic now."""
    topic = settings.topic_transactions
    consumer = Consumer(settings.kafka_client_config(**{
        "group.id": f"{settings.app_id}-backtest-{uuid.uuid4().hex[:8]}", "enable.auto.commit": False,
        "enable.auto.offset.store": False, "enable.partition.eof": True}))
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        return consumer, {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10) for p in partitions}
    except KafkaException as exc:
        consumer.close()
        raise InfraError(f"cannot read the offsets of {topic}: {exc}") from None


def read_topic(settings: Settings, consumer: Consumer, ends: dict[int, tuple[int, int]]) -> Iterator[list[Record]]:
    """The transactions topic in batches, from its beginning to the ends given (assigned, never
    committed); closes `consumer` when done."""
    topic = settings.topic_transactions
    pending = {p: high for p, (low, high) in ends.items() if high > low}
    try:
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in pending])
        heard = time.monotonic()
        while pending:
            if time.monotonic() - heard > STALLED:
                raise InfraError(f"nothing read from {topic} partitions {sorted(pending)} for {STALLED:.0f} s")
            batch: list[Record] = []
            messages = consumer.consume(BATCH, 1.0)
            heard = time.monotonic() if messages else heard
            for msg in messages:
                partition, offset, error = msg.partition() or 0, msg.offset() or 0, msg.error()
                if error is not None:
                    if error.fatal():
                        raise InfraError(f"cannot read {topic}[{partition}]: {error}")
                    if offset >= pending.get(partition, 0):  # at its end (past a compacted-away tail)
                        pending.pop(partition, None)
                    continue
                if partition not in pending or offset >= pending[partition]:
                    pending.pop(partition, None)
                    continue
                batch.append(Record(topic, partition, offset, msg.key(), msg.value()))
                if offset == pending[partition] - 1:
                    pending.pop(partition)
            yield batch
    except KafkaException as exc:
        raise InfraError(f"cannot read {topic}: {exc}") from None
    finally:
        consumer.close()


@dataclass
class Row:
    """One rule's tier on one local day: the users it fired for, with the rules tried and in force."""

    rule: str
    tier: str
    local_date: date
    users: dict[str, datetime] = field(default_factory=dict)  # user -> crossing time, with the rules tried
    in_force: dict[str, datetime] = field(default_factory=dict)  # the same with the rules in force

    @property
    def new(self) -> list[str]:
        return sorted(set(self.users) - set(self.in_force))

    @property
    def no_longer(self) -> list[str]:
        return sorted(set(self.in_force) - set(self.users))

    @property
    def earliest(self) -> datetime | None:
        return min(self.users.values(), default=None)

    def as_json(self) -> dict[str, object]:
        earliest = self.earliest
        return {"rule": self.rule, "tier": self.tier, "local_date": self.local_date.isoformat(),
                "users": len(self.users), "in_force_users": len(self.in_force), "new_users": self.new,
                "no_longer_users": self.no_longer, "earliest_crossing": earliest.astimezone(timezone.utc).isoformat() if earliest else None}


def compare(tried: Sequence[LimitAlert], in_force: Sequence[LimitAlert]) -> list[Row]:
    """Rows per (rule, tier, local day), in that order."""
    rows: dict[tuple[str, str, date], Row] = {}
    for alerts, side in ((tried, "users"), (in_force, "in_force")):
        for a in alerts:
            row = rows.setdefault((a.rule, a.tier, a.local_date), Row(a.rule, a.tier, a.local_date))
            crossings: dict[str, datetime] = getattr(row, side)
            crossings.setdefault(a.user_id, a.detected_at)
    return [rows[key] for key in sorted(rows, key=lambda k: (k[0], k[1] != "warn", k[2]))]
