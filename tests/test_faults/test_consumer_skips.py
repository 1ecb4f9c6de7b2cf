"""The group's committed offset ahead of the worker's state: the state says where counting resumes.

faust 0.15.3 can move the group's committed offset past records the worker has not counted (its own
commits follow its ack list, and its "seek to committed" after an assignment jumps ahead). This puts
a worker in that position on purpose: its state says every partition starts at offset 0, while the
group's committed offset is past them (at the end, or in the middle). The worker reads from its
state (`stream_app.reader`), so every record is counted once and every alert delivered exactly once.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import orjson
import pytest
from confluent_kafka import Consumer, TopicPartition

from paylimit.runtime.pipeline import Pipeline
from paylimit.settings import Settings
from stream_app.batch import progress_key
from tests.e2e.harness import produce, simulate, watermarks
from tests.test_faults.helpers import assert_exact, consumed, wait_for

pytestmark = [pytest.mark.faults, pytest.mark.integration]


def _ends(settings: Settings) -> dict[int, int]:
    consumer = Consumer(settings.kafka_client_config(**{"group.id": f"{settings.app_id}-ends"}))
    try:
        return {p: high for p, (_, high) in watermarks(consumer, settings.topic_transactions).items()}
    finally:
        consumer.close()


def _state_at_zero(settings: Settings) -> None:
    """The worker's progress markers, in its table's changelog, at offset 0 of every partition."""
    produce(settings, f"{settings.app_id}-days-changelog",
            [(p, orjson.dumps(progress_key(p)), orjson.dumps({"o": 0, "t": None})) for p in range(settings.partitions)])


def _commit(settings: Settings, offsets: dict[int, int]) -> None:
    consumer = Consumer(settings.kafka_client_config(**{"group.id": settings.app_id, "enable.auto.commit": False}))
    try:
        tps = [TopicPartition(settings.topic_transactions, p, o) for p, o in offsets.items()]
        assert all(tp.error is None for tp in consumer.commit(offsets=tps, asynchronous=False))
    finally:
        consumer.close()


@pytest.mark.parametrize("committed_at", ["end", "middle"])
def test_records_below_the_committed_offset_are_counted(
        make_settings: Callable[..., Settings], tmp_path: Path, committed_at: str) -> None:
    settings = make_settings()
    run = simulate(settings, tmp_path / "run", "heavy_users", 11)
    ends = _ends(settings)
    assert all(end > 2 for end in ends.values()), ends
    _state_at_zero(settings)
    _commit(settings, {p: end if committed_at == "end" else end // 2 for p, end in ends.items()})
    pipeline = Pipeline(settings)
    pipeline.start()
    try:
        wait_for(lambda: consumed(pipeline) >= sum(ends.values()), 120, "every record to be counted", step=0.5)
        pipeline.wait_drained(timeout=120)
        assert consumed(pipeline) == sum(ends.values())  # each record once: none twice, none skipped
        assert_exact(settings, run)
    finally:
        pipeline.stop()
