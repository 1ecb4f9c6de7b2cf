"""The checkpoint's order on the real broker, when Kafka refuses a write: nothing is committed past
state the changelog does not have, and the refused keys are written again once Kafka takes them."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any, Callable

import orjson
import pytest
from paylimit.settings import Settings
from stream_app.reader import Record
from stream_app.state import day_count
from tests.test_stream_app.test_hot_user import read_topic
from tests.test_stream_app.test_stall import set_max_message_bytes as max_message_bytes
from tests.test_stream_app.test_processor import committed, core, count, transaction

pytestmark = pytest.mark.integration


def test_a_refused_changelog_write_holds_the_group_commit_until_it_is_written(
        make_settings: Callable[..., Settings]) -> None:
    settings = make_settings(partitions=1, daily_limit=100)
    values: dict[str, Any] = {}
    processor = core(settings, values)
    topic = processor.checkpoint.changelog.topic
    max_message_bytes(settings, topic, 150)  # a day value is larger; a progress record is not
    records = [Record(settings.topic_transactions, 0, i, b"u1", transaction(f"t{i}", f"2026-03-10T1{i}:00:00+05:30"))
               for i in range(3)]

    async def count_and_commit() -> None:
        await count(processor, records)
        await processor.commit()

    asyncio.run(count_and_commit())
    assert committed(settings, 0) < 0  # nothing committed: the changelog lacks the day
    assert "the state" in processor.metrics.stalled
    assert processor.checkpoint.changelog.pending  # marked again

    max_message_bytes(settings, topic, 1_000_000)
    # the broker applies a topic's new config a moment after the controller accepts it; the worker
    # commits again on every turn of its loop, and so does this test until the broker takes the day
    deadline = time.monotonic() + 30
    while committed(settings, 0) != 3 and time.monotonic() < deadline:
        asyncio.run(processor.commit())
    assert committed(settings, 0) == 3 and "the state" not in processor.metrics.stalled
    days = [json.loads(v or b"null") for k, v in read_topic(settings, topic) if orjson.loads(k or b"") == "u1|2026-03-10"]
    assert [day_count(day) for day in days] == [3]
