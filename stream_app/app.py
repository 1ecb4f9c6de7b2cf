"""`build_app(settings)`: the worker's faust edge: the app, its topics and tables, and the hooks
that hand the worker's core (`stream_app.processor`) its partitions, records and timers.

faust assigns the worker its partitions and keeps its state: the `days` table (counts and
progress, restored in bulk by `stream_app.restore`, written to its changelog by
`stream_app.checkpoint`), the `limits` table, and the web views (`stream_app.views`). The counting,
its exactness and the order of its writes are the core's, which imports nothing from faust; the
faust internals the worker needs are in `stream_app.faust_internals`.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, cast

import faust
from confluent_kafka.admin import NewTopic
from mode.utils.times import want_seconds
from faust.types.tables import GlobalTableT

from paylimit.serving import allowed_hosts, host_check
from paylimit.settings import Settings
from stream_app.batch import Days
from stream_app.changelog import Changelog
from stream_app.checkpoint import STALL_REPORT
from stream_app import heap
from stream_app.exporter import worker_registry
from stream_app.faust_credentials import broker_credentials
from stream_app.faust_internals import (FaustGroup, PromptTableManager, check, recovered, shorten_fetch_wait,
                                        store_dict)
from stream_app.processor import Processor
from stream_app.restore import STORE_URL
from stream_app.views import register_views

log = logging.getLogger("paylimit.worker")
#: faust's own consumer only fetches the limits and, at a recovery, the changelog: a short wait
#: keeps the recovery's offset requests from queuing behind a 1.5 s fetch (`shorten_fetch_wait`)
FAUST_FETCH_WAIT_MS = 100


class WorkerNotReady(Exception):
    """The worker did not become ready within `settings.worker_ready_timeout`."""


def limits_table(app: faust.App) -> GlobalTableT:
    """Per-user limit overrides (`stream_app.limits`), changelog `settings.topic_limits`."""
    # partitions=1 and recovery_buffer_size=1: faust's documented settings for a GlobalTable
    # shared by several workers (otherwise recovery can loop).
    return app.GlobalTable("limits", default=None, partitions=1,
                           recovery_buffer_size=1, key_type=bytes, value_type=bytes)


def _exit_unless_ready(app: faust.App, group: FaustGroup, timeout: float) -> None:
    """Never up for good counting nothing: a worker not ready by its deadline crashes faust (exit
    status 1) for its supervisor to start it again; a health check sees it, but compose restarts
    only what exits."""
    if group.ready() or app.should_stop:
        return
    log.error("not ready %.0f s after the start (rebalancing: %s, state restored: %s): exiting for the "
              "supervisor to start the worker again", timeout, app.rebalancing, recovered(app))
    app.loop.create_task(app.crash(WorkerNotReady(f"not ready within {timeout} s")))


def changelog_topics(app: faust.App) -> list[NewTopic]:
    """The tables' changelog topics as faust declares them (its aiokafka driver's topic config).
    Created before the worker starts (`paylimit worker`): faust creates them while its consumer
    joins the group, and a leader whose metadata misses them assigns none of their partitions
    ("Ignoring missing topic"), so the tables never recover and the worker never becomes ready."""
    specs = []
    for table in app.tables.values():
        topic = table.changelog_topic
        flags = ({"compact"} if topic.compacting else set()) | ({"delete"} if topic.deleting else set())
        config = {"cleanup.policy": ",".join(sorted(flags))} if flags else {}
        if topic.retention:
            config["retention.ms"] = str(int(want_seconds(topic.retention) * 1000))
        config.update({k: str(v) for k, v in (topic.config or {}).items()})
        specs.append(NewTopic(topic.get_topic_name(), topic.partitions or app.conf.topic_partitions,
                              topic.replicas or app.conf.topic_replication_factor, config=config))
    return specs


def build_app(settings: Settings) -> faust.App:
    app = faust.App(
        settings.app_id,
        broker=f"kafka://{settings.kafka_bootstrap_servers}",
        broker_credentials=broker_credentials(settings),
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
        producer_acks=-1,  # faust's own writes; the worker's go through `Writer`
        stream_buffer_maxsize=16384,
        broker_max_poll_records=5000,
        table_standby_replicas=0,
        web_enabled=True,
        web_bind=settings.web_host,
        web_host=settings.web_host,
        web_port=settings.web_port,
        canonical_url=settings.advertised_url,  # what the other workers forward usage queries to
        # faust's own views are off: /table/ serves any table's values (a user's transaction ids),
        # /router/ the workers' addresses, / and /graph the worker's internals
        web_tables_enabled=False, web_router_enabled=False, web_stats_enabled=False, web_graph_enabled=False,
        web_application_options={"middlewares": [host_check(allowed_hosts(settings, settings.advertised_url))]},
        datadir=str(settings.home / "worker"),
        TableManager=PromptTableManager,  # starts a second sooner
    )
    # subscribed so that faust assigns the worker its partitions, co-partitioned with `days`; the
    # records are the reader's (`stream_app.reader`). acks=False: faust never commits offsets of its
    # own for them, only the checkpoint does, from the state (`stream_app.checkpoint`)
    transactions = app.topic(settings.topic_transactions, partitions=settings.partitions, key_type=bytes,
                             value_type=bytes, key_serializer="raw", value_serializer="raw", acks=False)
    # values are the JSON bytes themselves, in memory and in the changelog (see StagedWrites)
    days = app.Table("days", default=None, partitions=settings.partitions, value_type=bytes,
                     store=STORE_URL, options={"settings": settings},  # restored in bulk (stream_app.restore)
                     # faust's changelog is compacted; without closed segments it never is. Kept for
                     # good, whatever the broker's default: compaction bounds it (days are
                     # tombstoned twice the retention after they end)
                     extra_topic_configs={"retention.ms": -1,
                                          "segment.ms": int(settings.changelog_segment.total_seconds() * 1000),
                                          "min.insync.replicas": settings.min_insync_replicas or 1})
    cast(Any, days).value_serializer = "raw"  # faust derives "json" from value_type; restore the bytes as they are
    limits = limits_table(app)
    check(app, days)
    group = FaustGroup(app, settings.topic_transactions)
    state = Days(store_dict(days))
    processor = Processor(settings, group, state, Changelog(days.changelog_topic.get_topic_name(), state), store_dict(limits))

    @app.task
    async def read_transactions() -> None:
        await processor.run()

    async def revoke(*_: Any, **__: Any) -> None:
        shorten_fetch_wait(app, FAUST_FETCH_WAIT_MS)
        await processor.revoke()

    app.on_partitions_revoked.connect(cast(Any, revoke))
    app.on_before_shutdown.connect(cast(Any, revoke))

    @app.timer(settings.commit_interval)
    async def commit_progress() -> None:
        await processor.commit()

    @app.timer(heap.INTERVAL)
    async def release_heap() -> None:
        await asyncio.get_running_loop().run_in_executor(None, heap.release)

    @app.agent(transactions, name="drop-delivered")
    async def drop_delivered(stream: faust.StreamT) -> None:
        """What faust fetches before the processor pauses its fetching: dropped, since the processor
        reads every assigned partition itself from its state's next offset."""
        async for _ in stream.events():
            pass

    @app.timer(10.0)
    async def report() -> None:
        log.info("records %s", processor.metrics.line())

    @app.timer(STALL_REPORT)
    async def report_stalls() -> None:
        processor.metrics.report_stalls()  # never silent while stalled, whichever wait it is stuck in

    register_views(app, settings, days, store_dict(limits), processor.metrics, group.ready, worker_registry(processor),
                   lambda: processor.rulebook.rules)
    if settings.worker_ready_timeout:
        # on the loop itself: faust starts the app's tasks and timers only once its tables are
        # recovered, which is what a stuck worker never gets to
        app.loop.call_later(settings.worker_ready_timeout, _exit_unless_ready, app, group, settings.worker_ready_timeout)
    return app
