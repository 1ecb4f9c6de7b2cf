"""`Changelog`: the `days` table's changelog writes, coalesced per key between flushes.

A batch writes its changed keys to the table and marks them here; `flush` sends each marked key's
current value once (a tombstone for a key the table no longer has), the progress records last, so
a partition's progress is never stored before the counts it covers (the producer keeps a
partition's order). Between flushes a key changed by many batches costs one record, and a
partition's progress one record instead of one per batch: at 5,000 tx/s a flush every half second
is a dozen produce requests a second to the broker, not hundreds.

Only state whose outputs (alerts, dead letters) are acknowledged is ever marked, so any flush
stores a consistent state; a worker killed before a flush replays from the last flushed progress
(its alerts are sent again with the same ids; the notifier drops repeats).
"""

from __future__ import annotations

from typing import Any

import orjson

from stream_app.batch import is_progress_key
from stream_app.output import Output


class Changelog:
    def __init__(self, table: Any) -> None:
        self.table = table
        self.values: dict = table.data.data  # the memory store's own dict, as `Batch` writes it
        self.pending: dict[str, int] = {}  # key -> its changelog partition

    def mark(self, key: str, partition: int) -> None:
        self.pending[key] = partition

    def flush(self, output: Output) -> int:
        """Queue every marked key's current value on `output` (its `wait` says when the broker
        has them); returns how many."""
        pending, self.pending = self.pending, {}
        topic = self.table.changelog_topic.get_topic_name()
        for last in (False, True):
            for key, partition in pending.items():
                if is_progress_key(key) is last:
                    output.send(topic, orjson.dumps(key), self.values.get(key), partition)
        return len(pending)
