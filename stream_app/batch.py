"""`Batch`: one batch's view of the worker's `days` table, written to the table and its changelog at once."""

from __future__ import annotations

from typing import Any

import orjson

from stream_app.output import Output

MARKER = "__"  # prefix of the per-partition progress keys in the `days` table


def encode_value(value: Any) -> bytes:
    """A table value as the JSON bytes kept in memory and in the changelog, in an exact-size copy:
    the bytes orjson returns keep its ~4 KB output buffer, 12x a day value's size."""
    return memoryview(orjson.dumps(value)).tobytes()


class Batch:
    """One batch's view of the `days` table: reads see the batch's own earlier writes; `write`
    writes each changed key once to the table and queues it to the changelog, on the key's source
    partition, encoded exactly as faust's json codec would, so faust restores the table from it.
    """

    def __init__(self, table: Any) -> None:
        self.table = table
        self.values: dict = table.data.data  # the memory store's own dict (one lookup, not four layers)
        self.staged: dict[str, tuple[int, Any]] = {}

    def get(self, key: str) -> Any:
        staged = self.staged.get(key)
        if staged is not None:
            return staged[1]
        raw = self.values.get(key)
        return None if raw is None else orjson.loads(raw)

    def set(self, partition: int, key: str, value: Any) -> None:
        self.staged[key] = (partition, value)

    def write(self, output: Output) -> None:
        """Write the staged keys to the table and queue them on `output` (its `wait` says when
        the broker has them)."""
        topic = self.table.changelog_topic.get_topic_name()
        # per partition, the progress markers (next offset, stream time) go after the counts: the
        # producer keeps a partition's order, so a marker is never stored before what it covers
        staged = sorted(self.staged.items(), key=lambda item: item[0].startswith(MARKER))
        for key, (partition, value) in staged:
            raw = None if value is None else encode_value(value)
            if raw is None:
                self.values.pop(key, None)
            else:
                self.values[key] = raw  # kept encoded: a few hundred bytes per user-day
            output.send(topic, orjson.dumps(key), raw, partition)
        self.staged.clear()
