"""The worker's reader on the real broker: batches in partition order, handed over as they arrive."""

from __future__ import annotations

import time
from typing import Callable

import pytest

from paylimit.settings import Settings
from stream_app.reader import TransactionReader
from tests.e2e.harness import produce

pytestmark = pytest.mark.integration


def test_poll_hands_over_what_arrived_without_waiting_for_a_full_batch(make_settings: Callable[..., Settings]) -> None:
    settings = make_settings(partitions=2)
    produce(settings, settings.topic_transactions, [(0, None, v) for v in (b"a", b"b", b"c")])
    reader = TransactionReader(settings)
    reader.assign({0: 1, 1: 0})  # from offset 1 of partition 0: "a" is already counted
    began = time.monotonic()
    records = reader.poll(1000, 30.0)
    # a batch of 1000 is never filled: the records come back when fetched, not after the 30 s
    assert time.monotonic() - began < 15
    assert [(r.partition, r.offset, r.value) for r in records] == [(0, 1, b"b"), (0, 2, b"c")]
    assert reader.poll(1000, 0.2) == []  # nothing more: an empty batch after the timeout


def test_poll_returns_at_most_max_records_in_offset_order(make_settings: Callable[..., Settings]) -> None:
    settings = make_settings(partitions=1)
    produce(settings, settings.topic_transactions, [(0, None, str(i).encode()) for i in range(25)])
    reader = TransactionReader(settings)
    reader.assign({0: 0})
    seen: list[int] = []
    deadline = time.monotonic() + 30
    while len(seen) < 25 and time.monotonic() < deadline:
        batch = reader.poll(10, 1.0)
        assert len(batch) <= 10
        seen += [r.offset for r in batch]
    assert seen == list(range(25))
