"""`build_app(settings)`: the faust app with its topics, tables, the counting agent and the views.

The agent takes records in small batches (at most `batch_max`, waiting at most `batch_window`)
and only calls the pure functions (validation, local day, counting, alerts). What makes a crash
at any moment safe is where progress lives and the order of the side effects:
  * Progress is state: the `days` table holds, per source partition, the next offset to
    process, written with the counts and the stream time, last, in the same changelog
    partition. A record below it was already counted and is skipped; a record above it means
    the consumer skipped some (faust 0.15 can jump ahead after an assignment), and the worker
    reads the skipped stretch itself (`stream_app.gaps`) before going on; a partition whose
    records stay undelivered below its end for `stall_interval` (skipped, with none after them)
    is read the same way by a timer. The agent and the timer hold one lock while they count.
    Counting never depends on faust's offset bookkeeping, which has known bugs (gaps and
    duplicates in its ack list).
  * A batch's outputs (alerts, dead letters) are acknowledged by the broker before its state
    is written, so a crash before the state write replays the batch and sends the same alerts
    again (same alert_id; the notifier drops repeats), and a crash after it has nothing to redo.
  * The consumer group's offset is committed from that state, every `commit_interval`; it only
    says where to start reading after a restart.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections import Counter
from datetime import datetime, timezone
from typing import Any, Sequence, cast

import faust
import orjson
from aiokafka.errors import KafkaError
from faust.types import TP, EventT, Message

from paylimit.contracts import DeadLetter, InvalidRecord, LimitAlert, encode
from paylimit.errors import InfraError
from paylimit.settings import Settings
from stream_app.alerts import alert_for
from stream_app.batch import MARKER, Batch
from stream_app.counting import DayCount, Outcome, day_key, decide, expired
from stream_app.gaps import GapReader, Record
from stream_app.limits import limit_for, limits_table
from stream_app.localday import local_day
from stream_app.metrics import Metrics
from stream_app.validation import validate
from stream_app.views import register_views

log = logging.getLogger("paylimit.worker")

DAY = 86400.0


def stream_time_key(partition: int) -> str:
    return f"{MARKER}stream_time__|{partition}"


def next_offset_key(partition: int) -> str:
    return f"{MARKER}next_offset__|{partition}"


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
        broker_session_timeout=settings.session_timeout,
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
    def raw_topic(name: str) -> faust.TopicT:
        # bytes in, bytes out: the contracts parse and encode, so a bad record becomes a dead letter
        return app.topic(name, partitions=settings.partitions, key_type=bytes, value_type=bytes,
                         key_serializer="raw", value_serializer="raw")

    transactions, alerts, dead_letters = (raw_topic(t) for t in (settings.topic_transactions, settings.topic_alerts,
                                                                 settings.topic_dlq))
    # values are the JSON bytes themselves, in memory and in the changelog (see Batch)
    days = app.Table("days", default=None, partitions=settings.partitions, value_type=bytes)
    cast(Any, days).value_serializer = "raw"  # faust derives "json" from value_type; restore the bytes as they are
    limits = limits_table(app)
    metrics = Metrics()
    cleaned_through: dict[int, float] = {}

    def dead_letter(msg: Message | Record, error: str, reason: str, out: list[tuple[bytes | None, bytes]]) -> None:
        metrics.dead_letter(error)
        letter = DeadLetter.of(msg.value or b"", topic=msg.topic, partition=msg.partition, offset=msg.offset,
                               error=error, reason=reason, at=datetime.now(timezone.utc))
        out.append((msg.key, encode(letter)))

    def drop_expired_days(batch: Batch, partition: int, stream_time: float) -> None:
        """Once per day of stream time per partition: forget days past twice the retention."""
        if stream_time < cleaned_through.get(partition, float("-inf")) + DAY:
            return
        cleaned_through[partition] = stream_time
        for key, raw in list(days.data.items()):
            if key.startswith(MARKER):
                continue
            value = orjson.loads(raw)
            if value["p"] == partition and expired(DayCount.from_json(value), stream_time, settings.retention):
                batch.set(partition, key, None)

    def handle(msg: Message | Record, batch: Batch, now: datetime, out: list[tuple[LimitAlert, bool]],
               letters: list[tuple[bytes | None, bytes]]) -> None:
        try:
            tx = validate(msg.value, now, settings)
        except InvalidRecord as exc:
            dead_letter(msg, exc.error, exc.reason, letters)
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
            dead_letter(msg, "too_late", f"its local day {day.key} ({day.zone}) ended more than "
                        f"{settings.retention} before the stream time", letters)
            return
        metrics.outcome(decision.outcome)
        if decision.day is not None:
            batch.set(msg.partition, key, decision.day.to_json())
        if decision.stream_time is not None and decision.stream_time != stream_time:
            batch.set(msg.partition, st_key, decision.stream_time)
            drop_expired_days(batch, msg.partition, decision.stream_time)
        if decision.alert_day is not None:
            out.append((alert_for(decision.alert_day, now), decision.outcome is Outcome.RESEND))

    gaps = GapReader(settings)

    async def off_loop(fn: Any, *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(None, fn, *args)

    lock = asyncio.Lock()  # the agent and the stall check take turns on the state
    delivered: Counter[int] = Counter()  # partition -> records the consumer delivered to the agent

    async def process(events: Sequence[EventT]) -> None:
        async with lock:
            records: list[Any] = []
            expected: dict[int, int] = {}
            for event in events:
                msg = event.message
                delivered[msg.partition] += 1
                if msg.partition not in expected:
                    expected[msg.partition] = await next_offset(msg.topic, msg.partition)
                if msg.offset < expected[msg.partition]:
                    metrics.replayed += 1  # already in the state (replayed after a restart or rebalance)
                    continue
                if msg.offset > expected[msg.partition]:
                    log.warning("partition %d: the consumer skipped offsets %d..%d; reading them directly",
                                msg.partition, expected[msg.partition], msg.offset - 1)
                    records += await off_loop(gaps.read, msg.topic, msg.partition, expected[msg.partition], msg.offset)
                records.append(msg)
                expected[msg.partition] = msg.offset + 1
            await process_records(records)

    async def next_offset(topic: str, partition: int) -> int:
        """The next offset of a partition to count: from the state, else where the group starts."""
        stored = days.get(next_offset_key(partition))
        return int(stored) if stored is not None else await off_loop(gaps.start_offset, topic, partition)

    stalled: dict[int, tuple[int, int]] = {}  # partition -> (next offset, delivered) at the previous check

    @app.timer(settings.stall_interval)
    async def read_stalled_partitions() -> None:
        """A partition whose consumer has fetched up to its end while the worker's next offset
        stayed below it, with nothing delivered, for a whole interval: the consumer skipped those
        records and no later one came to show it (see `stream_app.gaps`); read them here."""
        if app.rebalancing or app.in_recovery or not cast(Any, app.tables).recovery.completed.is_set():
            stalled.clear()
            return
        try:
            await read_stalled(app.consumer_generation_id)
        except InfraError as exc:  # the broker is away: a timer that raises would crash the worker
            log.warning("%s; trying again in %.0f s", exc, settings.stall_interval)

    async def read_stalled(generation: int) -> None:
        at_end = []  # partitions whose consumer has fetched everything: is anything left undelivered?
        for tp in app.consumer.assignment():
            if tp.topic == settings.topic_transactions:
                end = await off_loop(gaps.end_offset, tp.topic, tp.partition)
                try:
                    position = await app.consumer.position(tp)
                except KafkaError as exc:  # the partition left meanwhile (IllegalStateError), or the broker
                    raise InfraError(f"partition {tp.partition}: no consumer position: {exc!r}") from None
                if position is not None and position >= end:
                    at_end.append((tp, end))
                else:
                    stalled.pop(tp.partition, None)  # still fetching
        async with lock:
            for tp, end in at_end:
                start = await next_offset(tp.topic, tp.partition)
                if start >= end:
                    stalled.pop(tp.partition, None)
                    continue
                mark = (start, delivered[tp.partition])
                if stalled.get(tp.partition) != mark:
                    stalled[tp.partition] = mark  # first sight: the consumer has an interval to deliver them
                    continue
                log.warning("partition %d: offsets %d..%d were not delivered for %.0f s; reading them directly",
                            tp.partition, start, end - 1, settings.stall_interval)
                records = await off_loop(gaps.read, tp.topic, tp.partition, start, min(end, start + settings.batch_max))
                if app.consumer_generation_id != generation or app.rebalancing:
                    return  # the partition may have moved to another worker meanwhile
                await process_records(records)

    async def process_records(records: Sequence[Any]) -> None:
        """Count records that are each the next of their partition, then write outputs and state."""
        # faust's aiokafka producer (no public accessor); see Batch
        batch = Batch(days, cast(Any, app.producer)._ensure_producer())
        out: list[tuple[LimitAlert, bool]] = []
        letters: list[tuple[bytes | None, bytes]] = []
        now = datetime.now(timezone.utc)
        for record in records:
            handle(record, batch, now, out, letters)
            batch.set(record.partition, next_offset_key(record.partition), record.offset + 1)
        # outputs first, acknowledged; then the state that says they are done
        sent = [await alerts.send(key=a.user_id.encode(), value=encode(a)) for a, _ in out]
        sent += [await dead_letters.send(key=key, value=value) for key, value in letters]
        for fut in sent:
            await fut
        for alert, resent in out:
            log.info("alert %s user=%s date=%s count=%d%s", alert.alert_id, alert.user_id, alert.local_date,
                     alert.count, " (re-sent)" if resent else "")
        await batch.flush()

    committed: dict[TP, int] = {}
    ticks = itertools.count()

    @app.timer(settings.commit_interval)
    async def commit_progress() -> None:
        """Commit the group's offsets from the state (where to start reading after a restart)."""
        # Mostly only what moved: a commit with a stale generation (mid-rebalance) makes the member
        # rejoin, so committing unchanged offsets every tick would keep a rebalance going. Every
        # tenth tick all of them, since faust's own commits (of its ack list, which lacks the
        # records read directly) can move the group's offsets back.
        if app.rebalancing:
            return
        again = next(ticks) % 10 == 0
        offsets = {}
        for tp in app.consumer.assignment():
            if tp.topic == settings.topic_transactions:
                offset = days.get(next_offset_key(tp.partition))
                if offset is not None and (again or committed.get(tp) != int(offset)):
                    offsets[tp] = int(offset)
        # (faust's own commit follows its ack list; see the module docstring)
        if offsets and await cast(Any, app.consumer)._commit(offsets):
            committed.update(offsets)

    @app.agent(transactions, name="count-transactions")
    async def count_transactions(stream: faust.StreamT) -> None:
        async for events in cast(Any, stream).take_events(settings.batch_max, within=settings.batch_window):
            await process(events)

    @app.timer(10.0)
    async def report() -> None:
        log.info("records %s", metrics.line())

    register_views(app, settings, days, limits, metrics)
    return app
