"""`build_app(settings)`: the faust app with its topics, tables, the counting path and the views.

faust assigns the worker its partitions and keeps its state (the `days` table, its changelog,
the web views; after an assignment `stream_app.restore` restores the table in bulk before faust's
own recovery reads what is left); the records themselves are read by `stream_app.reader` in
batches (at most `batch_max`, waiting at most `batch_window`), and the counting only calls the pure
functions (validation, local day, counting, alerts). What makes a crash at any moment safe is where
progress lives and the order of the side effects:
  * Progress is state: the `days` table holds, per source partition, the next offset to
    process, written with the counts and the stream time, last, in the same changelog
    partition. The reader starts each assigned partition there, after the table's recovery,
    and again after any rebalance or broker error; a record below it was already counted and is
    skipped. faust's fetching of the partitions is paused; the few records it delivers before
    that go through the agent, which applies the same rule (and reads a stretch faust skipped
    with the reader: faust 0.15 can jump ahead after an assignment). The reader and the agent
    hold one lock while they count, and a revocation waits for it. Counting never depends on
    faust's offset bookkeeping, which has known bugs (gaps and duplicates in its ack list).
  * A batch's outputs (alerts, dead letters) are acknowledged by the broker before its state
    is written to the table; the changelog gets the table's state every `commit_interval`
    (`stream_app.changelog`), so a crash replays the records since the last write and sends
    their alerts again (same alert_id; the notifier drops repeats).
  * The consumer group's offset is committed from the written state, every `commit_interval`;
    it only says where to start reading when the state has no progress for a partition.
"""

from __future__ import annotations

import asyncio
import gc
import itertools
import logging
from datetime import datetime, timezone
from typing import Any, Sequence, cast

import faust
import orjson
from confluent_kafka import KafkaException
from faust.types import TP, EventT, Message

from paylimit.contracts import DeadLetter, InvalidRecord, LimitAlert, encode
from paylimit.errors import InfraError
from paylimit.settings import Settings
from stream_app.alerts import alert_for
from stream_app.batch import Batch, Days, is_progress_key, progress_key
from stream_app.changelog import Changelog
from stream_app.counting import Outcome, day_key, decide, expired, expiry_cutoff
from stream_app.limits import limit_for, limits_table
from stream_app.localday import local_day
from stream_app.metrics import Metrics
from stream_app.output import Output
from stream_app.reader import Record, TransactionReader
from stream_app.restore import STORE_URL
from stream_app.validation import validate
from stream_app.views import register_views

log = logging.getLogger("paylimit.worker")

DAY = 86400.0
#: while progress is stalled, a log line this often (seconds), and a refused write tried again as often
STALL_REPORT = 5.0


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
        # decided by ensure_topics before a worker starts (`paylimit worker`); 1 where no broker is asked
        topic_replication_factor=settings.replication_factor or 1,
        consumer_auto_offset_reset="earliest",
        broker_commit_interval=settings.commit_interval,
        # a killed worker's partitions move on within seconds, not faust's default 60 s
        broker_session_timeout=settings.session_timeout,
        # a static member restarted after a crash gets its partitions back without waiting for that
        consumer_group_instance_id=settings.worker_instance,
        broker_heartbeat_interval=1.0,
        producer_acks=-1,  # faust's own writes; the worker's go through `Output`
        stream_buffer_maxsize=16384,
        broker_max_poll_records=5000,
        table_standby_replicas=0,
        web_enabled=True,
        web_bind=settings.web_host,
        web_host=settings.web_host,
        web_port=settings.web_port,
        canonical_url=settings.advertised_url,  # what the other workers forward usage queries to
        datadir=str(settings.home / "worker"),
    )
    # bytes in: the contracts parse, so a bad record becomes a dead letter
    transactions = app.topic(settings.topic_transactions, partitions=settings.partitions, key_type=bytes,
                             value_type=bytes, key_serializer="raw", value_serializer="raw")
    # values are the JSON bytes themselves, in memory and in the changelog (see Batch)
    days = app.Table("days", default=None, partitions=settings.partitions, value_type=bytes,
                     store=STORE_URL, options={"settings": settings},  # restored in bulk (stream_app.restore)
                     # faust's changelog is compacted; without closed segments it never is
                     extra_topic_configs={"segment.ms": int(settings.changelog_segment.total_seconds() * 1000),
                                          "min.insync.replicas": settings.min_insync_replicas or 1})
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
        cutoff = expiry_cutoff(stream_time, settings.retention)
        for key, raw in list(days.data.items()):
            if key[-10:] > cutoff or is_progress_key(key):  # day keys end with their date
                continue
            value = orjson.loads(raw)  # a hot day's bytes may be behind it: its partition and end are not
            if value["p"] == partition and expired(value["e"], stream_time, settings.retention):
                batch.set(partition, key, None)

    def handle(msg: Message | Record, batch: Batch, progress: dict[str, Any], now: datetime,
               out: list[tuple[LimitAlert, bool]], letters: list[tuple[bytes | None, bytes]]) -> None:
        try:
            tx = validate(msg.value, now, settings)
        except InvalidRecord as exc:
            dead_letter(msg, exc.error, exc.reason, letters)
            return
        day = local_day(tx.occurred_at, tx.timezone or settings.default_timezone)
        key = day_key(tx.user_id, day.key)
        stream_time = progress["t"]
        decision = decide(
            tx, day, batch.day(key), stream_time,
            limit_for(limits, tx.user_id, settings.daily_limit), settings.retention, msg.partition,
        )
        if decision.outcome is Outcome.TOO_LATE:
            dead_letter(msg, "too_late", f"its local day {day.key} ({day.zone}) ended more than "
                        f"{settings.retention} before the stream time", letters)
            return
        metrics.outcome(decision.outcome)
        if decision.day is not None:
            batch.set(msg.partition, key, decision.day)
        if decision.stream_time is not None and decision.stream_time != stream_time:
            progress["t"] = decision.stream_time
            drop_expired_days(batch, msg.partition, decision.stream_time)
        if decision.alert_day is not None:
            out.append((alert_for(decision.alert_day, now), decision.outcome is Outcome.RESEND))

    reader = TransactionReader(settings)
    output = Output(settings)
    state = Days(days)
    changelog = Changelog(days, state)

    async def off_loop(fn: Any, *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(None, fn, *args)

    lock = asyncio.Lock()  # the reader and the agent take turns on the state

    def stored_progress(partition: int) -> dict[str, Any] | None:
        raw = days.get(progress_key(partition))
        return orjson.loads(raw) if raw is not None else None

    async def next_offset(partition: int) -> int:
        """The next offset of a partition to count: from the state, else where the group starts."""
        stored = stored_progress(partition)
        return stored["o"] if stored is not None else await off_loop(reader.start_offset, partition)

    async def process(events: Sequence[EventT]) -> None:
        """Records faust delivered (only until the reader has paused its fetching of them)."""
        async with lock:
            records: list[Any] = []
            expected: dict[int, int] = {}
            for event in events:
                msg = event.message
                if msg.partition not in expected:
                    expected[msg.partition] = await next_offset(msg.partition)
                if msg.offset < expected[msg.partition]:
                    metrics.replayed += 1  # already in the state
                    continue
                if msg.offset > expected[msg.partition]:
                    log.warning("partition %d: the consumer skipped offsets %d..%d; reading them directly",
                                msg.partition, expected[msg.partition], msg.offset - 1)
                    records += await off_loop(reader.read, msg.partition, expected[msg.partition], msg.offset)
                records.append(msg)
                expected[msg.partition] = msg.offset + 1
            await process_records(records)

    def ready() -> bool:
        """Partitions assigned and the tables recovered: the state is the whole truth."""
        return not app.rebalancing and cast(Any, app.tables).recovery.completed.is_set()

    @app.task
    async def read_transactions() -> None:
        """The worker's main path: its assigned partitions, read from its state's next offsets."""
        generation: int | None = None  # the assignment the reader follows
        while not ready():
            await asyncio.sleep(0.05)
        # faust, pydantic and the rest of the start-up leave about a million objects that live as
        # long as the process; frozen, the cyclic GC's full collections skip them (~100 ms each)
        gc.freeze()
        while not app.should_stop:
            try:
                if not ready():
                    generation = None
                    await asyncio.sleep(0.05)
                    continue
                tps = {tp for tp in app.consumer.assignment() if tp.topic == settings.topic_transactions}
                app.consumer.pause_partitions(tps)  # faust resumes them after a recovery; this reads them
                if generation != app.consumer_generation_id:
                    generation = app.consumer_generation_id
                    await off_loop(reader.assign, {tp.partition: await next_offset(tp.partition) for tp in tps})
                records = await off_loop(reader.poll, settings.batch_max, settings.batch_window)
                metrics.resume("reading")
                async with lock:
                    if not ready() or generation != app.consumer_generation_id:
                        generation = None  # the partitions may have moved: read again from the state
                        continue
                    starts = {p: await next_offset(p) for p in {r.partition for r in records}}
                    fresh = [r for r in records if r.offset >= starts[r.partition]]
                    metrics.replayed += len(records) - len(fresh)  # the agent counted them first
                    await process_records(fresh)
            except InfraError as exc:  # the broker is away: read again from the state once it is back
                log.warning("%s; reading again in 1 s", exc)
                metrics.stall("reading", assigned(), str(exc))
                generation = None
                await asyncio.sleep(1.0)

    refusals = 0  # writes Kafka refused so far (whoever waited for them: see commit_progress)

    def assigned() -> list[int]:
        return [tp.partition for tp in app.consumer.assignment() if tp.topic == settings.topic_transactions]

    async def written(what: str, partitions: Sequence[int]) -> None:
        """Wait until Kafka has everything written so far (outputs and state), saying every few
        seconds that `what` waits (a broker away is waited for); InfraError if Kafka refused a
        record (a topic deleted, not authorized, a record over its size limit)."""
        nonlocal refusals
        waiting = asyncio.ensure_future(off_loop(output.wait))
        while not (await asyncio.wait({waiting}, timeout=STALL_REPORT))[0]:
            metrics.stall(what, partitions, "waiting for Kafka to acknowledge the worker's writes")
        try:
            waiting.result()
        except InfraError:
            refusals += 1
            raise

    async def fence(*_: Any, **__: Any) -> None:
        """Partitions leave this worker (a rebalance, or the worker stops) only after the batch
        being counted, with its state in the changelog that their next owner restores."""
        async with lock:
            try:
                await written("the state", list(changelog.flush(output).values()))
            except InfraError as exc:  # their next owner restores the state written before, and replays
                log.error("the state could not be written before partitions left: %s", exc)
            state.live.clear()  # in the store, encoded; a partition that comes back is restored anew

    app.on_partitions_revoked.connect(cast(Any, fence))
    app.on_before_shutdown.connect(cast(Any, fence))

    async def process_records(records: Sequence[Any]) -> None:
        """Count records that are each the next of their partition, then write outputs and state."""
        batch = Batch(state)
        out: list[tuple[LimitAlert, bool]] = []
        letters: list[tuple[bytes | None, bytes]] = []
        now = datetime.now(timezone.utc)
        progress: dict[int, dict[str, Any]] = {}  # partition -> its progress, as this batch moves it
        for record in records:
            mark = progress.get(record.partition)
            if mark is None:
                mark = progress[record.partition] = stored_progress(record.partition) or {"t": None}
            handle(record, batch, mark, now, out, letters)
            mark["o"] = record.offset + 1
        for partition, mark in progress.items():
            batch.set(partition, progress_key(partition), mark)
        # outputs first, acknowledged; then the state that says they are done. The changelog
        # gets the state every commit interval (`commit_progress`), coalesced per key, and the
        # group's offsets are committed only from state the changelog has. Outputs Kafka refuses
        # are sent again every few seconds, loudly, until it takes them: the partitions wait
        # (nothing is skipped), and the worker does not crash into a restart that would fail the same.
        while out or letters:
            try:
                for alert, _ in out:
                    output.send(settings.topic_alerts, alert.user_id.encode(), encode(alert))
                for key, value in letters:
                    output.send(settings.topic_dlq, key, value)
                await written("alerts and dead letters", list(progress))
                break
            except (InfraError, KafkaException) as exc:  # KafkaException: refused before it was sent
                metrics.stall("alerts and dead letters", list(progress), f"Kafka refused them: {exc}; trying again")
                if app.should_stop or app.rebalancing:  # given up (see stream_app.changelog): replayed
                    raise InfraError(f"alerts and dead letters not written: {exc}") from None
                await asyncio.sleep(STALL_REPORT)
        metrics.resume("alerts and dead letters")
        for alert, resent in out:
            log.info("alert %s user=%s date=%s count=%d%s", alert.alert_id, alert.user_id, alert.local_date,
                     alert.count, " (re-sent)" if resent else "")
        batch.write(changelog)

    committed: dict[TP, int] = {}
    ticks = itertools.count()

    @app.timer(settings.commit_interval)
    async def commit_progress() -> None:
        """Write the state to the changelog, then commit the group's offsets from it (where to start
        reading after a restart)."""
        # Mostly only what moved: a commit with a stale generation (mid-rebalance) makes the member
        # rejoin, so committing unchanged offsets every tick would keep a rebalance going. Every
        # tenth tick all of them, since faust's own commits (of its ack list, which lacks the
        # records read directly) can move the group's offsets back.
        if app.rebalancing:
            return  # the revocation's fence writes the state
        async with lock:  # between batches: a hot day is counted in place (stream_app.batch)
            before = refusals
            try:
                keys = changelog.flush(output)
            except InfraError as exc:
                metrics.stall("the state", assigned(), f"{exc}; writing it again")
                return
            again = next(ticks) % 10 == 0
            offsets = {}
            for tp in app.consumer.assignment():
                if tp.topic == settings.topic_transactions and (stored := stored_progress(tp.partition)):
                    if again or committed.get(tp) != stored["o"]:
                        offsets[tp] = stored["o"]
        if keys or offsets:
            try:
                await written("the state", list(keys.values()))  # never commit past what a restart would restore
            except InfraError:
                pass  # counted in `refusals`
            # the one producer's refusals reach whichever wait comes first: any refusal since this
            # flush may be of these keys
            if refusals != before:
                changelog.again(keys)
                metrics.stall("the state", assigned(),
                              "Kafka refused a write of the state's changelog or of the outputs; writing it again")
                return
        metrics.resume("the state")
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

    @app.timer(STALL_REPORT)
    async def report_stalls() -> None:
        metrics.report_stalls()  # never silent while stalled, whichever wait it is stuck in

    register_views(app, settings, days, limits, metrics, ready)
    return app
