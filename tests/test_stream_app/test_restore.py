"""The `days` table's bulk restore, on the real broker: what it reads and where it stops."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path
from typing import Any, Callable, cast

import orjson
import pytest
from confluent_kafka import OFFSET_BEGINNING
from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic
from faust.types import TP

from paylimit.runtime.pipeline import Pipeline
from paylimit.settings import Settings, get_settings
from stream_app.app import build_app
from stream_app.batch import StagedWrites, Days, progress_key
from stream_app.changelog import Changelog
from stream_app.faust_internals import store_dict
from stream_app.restore import BulkRestoredStore, read_changelog
from stream_app.state import DayCount, Progress, encode_day
from tests.e2e.harness import produce
from tests.test_faults.helpers import ready, wait_for

pytestmark = pytest.mark.integration


def _write(settings: Settings, topic: str, records: list[tuple[int, str, bytes | None]]) -> None:
    produce(settings, topic, [(partition, orjson.dumps(key), value) for partition, key, value in records])


def test_reads_each_partition_to_its_end_in_order(make_settings: Callable[..., Settings]) -> None:
    settings = make_settings(partitions=3)
    topic = settings.topic_transactions  # any topic with partitions will do
    _write(settings, topic, [(0, "a|2026-12-01", b'{"n":1}'), (0, "a|2026-12-01", b'{"n":2}'),
                             (1, "b|2026-12-01", b'{"n":1}'), (1, "b|2026-12-01", None)])
    changes, last = read_changelog(settings, topic, {0: OFFSET_BEGINNING, 1: OFFSET_BEGINNING, 2: OFFSET_BEGINNING})
    # each partition's records in offset order (the partitions interleave as they are fetched)
    assert [c for c in changes if c[0] == 0] == [(0, b'"a|2026-12-01"', b'{"n":1}'), (0, b'"a|2026-12-01"', b'{"n":2}')]
    assert [c for c in changes if c[0] == 1] == [(1, b'"b|2026-12-01"', b'{"n":1}'), (1, b'"b|2026-12-01"', None)]
    assert len(changes) == 4
    assert last == {0: 1, 1: 1}  # partition 2 is empty: nothing read, no offset


def test_reads_on_from_an_offset_and_nothing_past_the_end(make_settings: Callable[..., Settings]) -> None:
    settings = make_settings(partitions=1)
    topic = settings.topic_transactions
    _write(settings, topic, [(0, f"k{i}", b"1") for i in range(5)])
    changes, last = read_changelog(settings, topic, {0: 3})
    assert [c[1] for c in changes] == [b'"k3"', b'"k4"'] and last == {0: 4}
    assert read_changelog(settings, topic, {0: 5}) == ([], {})


def test_a_topic_created_a_moment_ago_is_read_not_refused(make_settings: Callable[..., Settings]) -> None:
    """faust creates the changelog just before the first assignment: its partitions are unknown to
    a new client for a moment (the worker crashed on that once)."""
    settings = make_settings()
    admin = AdminClient(settings.kafka_client_config())
    for n in range(3):
        topic = f"{settings.app_id}-new-{n}"
        for created in admin.create_topics([NewTopic(topic, 6, 1)]).values():
            created.result()
        assert read_changelog(settings, topic, dict.fromkeys(range(6), OFFSET_BEGINNING), timeout=20) == ([], {})


def test_the_days_table_is_restored_in_bulk(tmp_path: Path) -> None:
    settings = get_settings(kafka_bootstrap_servers="localhost:1", home=tmp_path)
    store = cast(Any, build_app(settings).tables["days"]).data
    assert isinstance(store, BulkRestoredStore)
    assert store.persisted_offset(TP(f"{settings.app_id}-days-changelog", 0)) is None  # nothing restored yet


def test_the_worker_creates_its_changelog_with_closed_segments(make_settings: Callable[..., Settings]) -> None:
    settings = make_settings(changelog_segment=timedelta(seconds=30))
    pipeline = Pipeline(settings)
    worker = pipeline.add_worker()
    try:
        wait_for(lambda: ready(pipeline, worker), 120, "the worker to be ready")
        admin = AdminClient(settings.kafka_client_config())
        resource = ConfigResource(ConfigResource.Type.TOPIC, f"{settings.app_id}-days-changelog")
        config = admin.describe_configs([resource])[resource].result(timeout=30)
        assert config["cleanup.policy"].value == "compact"
        assert config["segment.ms"].value == "30000"
    finally:
        pipeline.stop()


def test_the_keys_the_worker_writes_or_restores_leave_with_their_partition(tmp_path: Path) -> None:
    """After a rebalance's recovery the store drops the keys of the partitions this worker lost, by
    the partition in their values (or a progress key's name): it keeps no second map of its keys."""
    settings = get_settings(kafka_bootstrap_servers="localhost:1", home=tmp_path)
    table = build_app(settings).tables["days"]
    store = cast(Any, table).data
    days = Days(store_dict(table))
    batch = StagedWrites(days)
    for partition, user in ((0, "kept"), (1, "lost"), (2, "lost-too")):
        batch.set(partition, f"{user}|2026-03-10", DayCount(user, "2026-03-10", "UTC", partition, 1773187200.0,
                                                             "2026-03-10T01:00:00+00:00", 1, ["t0"]))
        batch.set(partition, progress_key(partition), Progress(1, None))
    batch.write(Changelog(f"{settings.app_id}-days-changelog", days))
    restored = encode_day(DayCount("back", "2026-03-10", "UTC", 1, 1773187200.0, "2026-03-10T01:00:00+00:00",
                                   1, ["t1"]))
    store._apply([(1, b'"back|2026-03-10"', restored), (0, b'"kept-2|2026-03-10"', days.values["kept|2026-03-10"])])
    changelog = f"{settings.app_id}-days-changelog"
    asyncio.run(store.on_recovery_completed({TP(changelog, 0), TP(settings.topic_transactions, 0)}, set()))
    assert set(days.values) == {"kept|2026-03-10", "kept-2|2026-03-10", progress_key(0)}
    assert len(store._key_partition) == 0
