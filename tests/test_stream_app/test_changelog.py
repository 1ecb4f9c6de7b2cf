"""The state's changelog writes: coalesced per key between flushes, progress after the counts."""

from __future__ import annotations

from typing import Any

import orjson

from stream_app.batch import StagedWrites, Days, progress_key
from stream_app.changelog import Changelog


class Sent:
    """Records what would go to Kafka, in order (the `Writer.send` signature)."""

    def __init__(self) -> None:
        self.records: list[tuple[str, int, str, Any]] = []

    def send(self, topic: str, key: bytes | None, value: bytes | None, partition: int = -1) -> None:
        self.records.append((topic, partition, orjson.loads(key or b"null"), orjson.loads(value or b"null")))


def test_a_key_changed_by_many_batches_is_written_once_with_its_last_value() -> None:
    days: dict[str, bytes] = {}
    sent = Sent()
    state = Days(days)
    changelog = Changelog("app-days-changelog", state)
    for n in range(1, 4):
        batch = StagedWrites(state)
        batch.set(2, "u1|2026-03-10", {"n": n})
        batch.set(2, progress_key(2), {"o": n * 10, "t": None})
        batch.set(5, progress_key(5), {"o": n, "t": None})
        batch.write(changelog)
    assert len(changelog.flush(sent)) == 3  # type: ignore[arg-type]
    assert sent.records == [
        ("app-days-changelog", 2, "u1|2026-03-10", {"n": 3}),
        ("app-days-changelog", 2, progress_key(2), {"o": 30, "t": None}),
        ("app-days-changelog", 5, progress_key(5), {"o": 3, "t": None}),
    ]
    assert not changelog.flush(sent) and len(sent.records) == 3  # type: ignore[arg-type]  # nothing new: nothing sent


def test_progress_goes_after_the_counts_it_covers_and_a_dropped_day_is_a_tombstone() -> None:
    days: dict[str, bytes] = {}
    sent = Sent()
    state = Days(days)
    changelog = Changelog("app-days-changelog", state)
    batch = StagedWrites(state)
    batch.set(0, "old|2026-03-01", {"n": 1})
    batch.write(changelog)
    changelog.flush(sent)  # type: ignore[arg-type]
    batch = StagedWrites(state)
    batch.set(0, progress_key(0), {"o": 7, "t": 1.0})  # staged first, still written last
    batch.set(0, "old|2026-03-01", None)
    batch.set(0, "new|2026-03-10", {"n": 1})
    batch.write(changelog)
    changelog.flush(sent)  # type: ignore[arg-type]
    assert [(key, value) for _, _, key, value in sent.records[1:]] == [
        ("old|2026-03-01", None), ("new|2026-03-10", {"n": 1}), (progress_key(0), {"o": 7, "t": 1.0})]
    assert "old|2026-03-01" not in days


def test_keys_the_broker_refused_are_written_again_with_their_values_then() -> None:
    days: dict[str, bytes] = {}
    sent = Sent()
    state = Days(days)
    changelog = Changelog("app-days-changelog", state)
    batch = StagedWrites(state)
    batch.set(1, "u1|2026-03-10", {"n": 1})
    batch.set(1, progress_key(1), {"o": 1, "t": None})
    batch.write(changelog)
    refused = changelog.flush(sent)  # type: ignore[arg-type]
    batch = StagedWrites(state)
    batch.set(1, "u1|2026-03-10", {"n": 2})
    batch.write(changelog)
    changelog.again(refused)
    changelog.flush(sent)  # type: ignore[arg-type]
    assert [(key, value) for _, _, key, value in sent.records[2:]] == [
        ("u1|2026-03-10", {"n": 2}), (progress_key(1), {"o": 1, "t": None})]
