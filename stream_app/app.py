"""`build_app(settings)`: the faust app with its topics, tables, the counting agent and the views.

The agent takes records in small batches (at most `batch_max`, waiting at most `batch_window`)
and only calls the pure functions (validation, local day, counting, alerts). The order of its
side effects is what makes a crash at any moment safe:
  1. the batch's new day values and each partition's stream time go into the `days` table, one
     changelog record per key per batch, on the source partition (so they persist in order);
  2. the batch's alerts are sent and their broker acks awaited before the batch is acknowledged;
  3. faust flushes the producer before it commits a source offset (at-least-once).
A record replayed after a crash is then a duplicate of its day (not counted again), and if it
was the crossing transaction its alert is sent again with the same alert_id.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timezone
from typing import Any, Sequence

import faust
import orjson
from faust.types import EventT, Message

from paylimit.contracts import DeadLetter, InvalidRecord, LimitAlert, encode
from paylimit.settings import Settings
from stream_app.alerts import alert_for
from stream_app.counting import DayCount, Outcome, decide, expired
from stream_app.limits import limit_for, limits_table
from stream_app.localday import local_day
from stream_app.metrics import Metrics
from stream_app.validation import validate
from stream_app.views import register_views

log = logging.getLogger("paylimit.worker")

DAY = 86400.0


def stream_time_key(partition: int) -> str:
    return f"__stream_time__|{partition}"


def day_key(user_id: str, date: str) -> str:
    return f"{user_id}|{date}"


def _credentials(settings: Settings) -> Any:
    protocol = settings.kafka_security_protocol
    if protocol == "PLAINTEXT":
        return None
    ssl_context = None
    if protocol.endswith("SSL"):
        import ssl

        ssl_context = ssl.create_default_context(cafile=settings.kafka_ssl_ca_location)
        if protocol == "SSL":
            return faust.SSLCredentials(ssl_context)
    return faust.SASLCredentials(
        username=settings.kafka_sasl_username,
        password=settings.kafka_sasl_password.get_secret_value() if settings.kafka_sasl_password else None,
        mechanism=settings.kafka_sasl_mechanism or "PLAIN",
        ssl_context=ssl_context,
    )


class Batch:
    """One batch's view of the `days` table: reads see the batch's own earlier writes; `flush`
    writes each changed key once to the table and its changelog, on the key's source partition.

    The changelog records go out as one Kafka record batch per partition (aiokafka's
    `send_batch`), encoded exactly as faust's json codec would, so faust restores the table from
    them as usual; this is most of the worker's speed (one future per batch, not per record).
    """

    def __init__(self, table: Any, producer: Any) -> None:
        self.table = table
        self.producer = producer
        self.staged: dict[str, tuple[int, Any]] = {}

    def get(self, key: str) -> Any:
        staged = self.staged.get(key)
        return staged[1] if staged is not None else self.table.get(key)

    def set(self, partition: int, key: str, value: Any) -> None:
        self.staged[key] = (partition, value)

    async def flush(self) -> None:
        """Write the staged keys; returns once the broker has acknowledged every record."""
        topic = self.table.changelog_topic.get_topic_name()
        batches: dict[int, Any] = {}
        pending = []
        for key, (partition, value) in self.staged.items():
            if value is None:
                self.table.data.pop(key, None)
            else:
                self.table.data[key] = value
            record = dict(key=orjson.dumps(key), value=None if value is None else orjson.dumps(value), timestamp=None)
            batch = batches.get(partition)
            if batch is None or batch.append(**record) is None:
                if batch is not None:
                    pending.append(await self.producer.send_batch(batch, topic, partition=partition))
                batch = batches[partition] = self.producer.create_batch()
                batch.append(**record)
        for partition, batch in batches.items():
            pending.append(await self.producer.send_batch(batch, topic, partition=partition))
        self.staged.clear()
        if pending:
            await asyncio.gather(*pending)


def build_app(settings: Settings) -> faust.App:
    app = faust.App(
        settings.app_id,
        broker=f"kafka://{settings.kafka_bootstrap_servers}",
        broker_credentials=_credentials(settings),
        store="memory://",
        autodiscover=False,
        topic_partitions=settings.partitions,
        topic_replication_factor=settings.replication_factor,
        consumer_auto_offset_reset="earliest",
        broker_commit_interval=settings.commit_interval,
        # a killed worker's partitions move on within seconds, not faust's default 60 s
        broker_session_timeout=10.0,
        broker_heartbeat_interval=1.0,
        producer_acks=-1,
        producer_linger=0.005,
        producer_max_batch_size=1 << 20,
        producer_compression_type="lz4",
        stream_buffer_maxsize=16384,
        broker_max_poll_records=5000,
        table_standby_replicas=0,
        web_enabled=True,
        web_bind=settings.web_host,
        web_host=settings.web_host,
        web_port=settings.web_port,
        datadir=str(settings.home / "worker"),
    )
    raw = dict(key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw")
    transactions = app.topic(settings.topic_transactions, partitions=settings.partitions, **raw)
    alerts = app.topic(settings.topic_alerts, partitions=settings.partitions, **raw)
    dead_letters = app.topic(settings.topic_dlq, partitions=settings.partitions, **raw)
    days = app.Table("days", default=None, partitions=settings.partitions)
    limits = limits_table(app)
    metrics = Metrics()
    cleaned_through: dict[int, float] = {}

    async def dead_letter(msg: Message, error: str, reason: str) -> None:
        metrics.dead_letter(error)
        letter = DeadLetter.of(msg.value or b"", topic=msg.topic, partition=msg.partition, offset=msg.offset,
                               error=error, reason=reason, at=datetime.now(timezone.utc))
        await dead_letters.send(key=msg.key, value=encode(letter))

    def drop_expired_days(batch: Batch, partition: int, stream_time: float) -> None:
        """Once per day of stream time per partition: forget days past twice the retention."""
        if stream_time < cleaned_through.get(partition, float("-inf")) + DAY:
            return
        cleaned_through[partition] = stream_time
        for key, value in list(days.data.items()):
            if isinstance(value, dict) and value["p"] == partition and expired(
                DayCount.from_json(value), stream_time, settings.retention
            ):
                batch.set(partition, key, None)

    async def handle(msg: Message, batch: Batch, now: datetime, out: list[tuple[LimitAlert, bool]]) -> None:
        try:
            tx = validate(msg.value, now, settings)
        except InvalidRecord as exc:
            await dead_letter(msg, exc.error, exc.reason)
            return
        day = local_day(tx.occurred_at, tx.timezone or settings.default_timezone)
        key, st_key = day_key(tx.user_id, day.key), stream_time_key(msg.partition)
        current = batch.get(key)
        stream_time = batch.get(st_key)
        decision = decide(
            tx, day, DayCount.from_json(current) if current else None, stream_time,
            limit_for(limits, tx.user_id, settings.daily_limit), settings.retention, msg.partition,
        )
        if decision.outcome is Outcome.TOO_LATE:
            await dead_letter(msg, "too_late", f"its local day {day.key} ({day.zone}) ended more than "
                              f"{settings.retention} before the stream time")
            return
        metrics.outcome(decision.outcome)
        if decision.day is not None:
            batch.set(msg.partition, key, decision.day.to_json())
        if decision.stream_time != stream_time:
            batch.set(msg.partition, st_key, decision.stream_time)
            drop_expired_days(batch, msg.partition, decision.stream_time)
        if decision.alert_day is not None:
            out.append((alert_for(decision.alert_day, now), decision.outcome is Outcome.RESEND))

    async def process(events: Sequence[EventT]) -> None:
        # faust's aiokafka producer (no public accessor); see Batch
        batch, out = Batch(days, app.producer._ensure_producer()), []
        now = datetime.now(timezone.utc)
        for event in events:
            await handle(event.message, batch, now, out)
        await batch.flush()
        sent = [await alerts.send(key=a.user_id.encode(), value=encode(a)) for a, _ in out]
        for fut in sent:
            await fut  # the broker's ack, before the batch is acknowledged (module docstring)
        for alert, resent in out:
            log.info("alert %s user=%s date=%s count=%d%s", alert.alert_id, alert.user_id, alert.local_date,
                     alert.count, " (re-sent)" if resent else "")

    @app.agent(transactions, name="count-transactions")
    async def count_transactions(stream: faust.StreamT) -> None:
        async for events in stream.take_events(settings.batch_max, within=settings.batch_window):
            await process(events)

    @app.timer(10.0)
    async def report() -> None:
        log.info("records %s", metrics.line())

    register_views(app, settings, days, limits, metrics)
    return app
