"""`Changelog`: the `days` table's changelog writes, coalesced per key between flushes.

A batch writes its changed keys to the table and marks them here; `flush` sends each marked key's
current value once (a tombstone for a key the table no longer has), the progress records last, so
a partition's progress is never stored before the counts it covers (the producer keeps a
partition's order). Between flushes a key changed by many batches costs one record, and a
partition's progress one record instead of one per batch: at 5,000 tx/s a flush every half second
is a dozen produce requests a second to the broker, not hundreds.

Only state whose outputs (alerts, dead letters) are acknowledged is ever marked, and the worker
flushes between batches, so a flush stores a consistent state; a worker killed before a flush
replays from the last flushed progress (its alerts are sent again with the same ids; the notifier
drops repeats). A hot day is counted in place (`stream_app.batch`), so a batch given up half-way
(the worker stopping while the broker refuses its outputs) leaves its counts in that day without
its progress: a flush then stores a day ahead of its partition's progress, and the records
replayed after a restart are duplicates of it (at most a batch, well inside the window of ids a
day keeps: `stream_app.state`), a crossing one sending its alert again. Nothing is counted twice
or lost.
"""

from __future__ import annotations

import orjson
from confluent_kafka import KafkaException

from paylimit.errors import InfraError
from stream_app.batch import Days, is_progress_key
from stream_app.writer import Writer


class Changelog:
    def __init__(self, topic: str, days: Days) -> None:
        self.topic = topic  # the table's changelog topic
        self.days = days
        self.pending: dict[str, int] = {}  # key -> its changelog partition
        self.sent = 0  # records queued to the changelog so far (a metric)

    def mark(self, key: str, partition: int) -> None:
        self.pending[key] = partition

    def flush(self, writer: Writer) -> dict[str, int]:
        """Queue every marked key's current value on `writer` (its `wait` says when the broker
        has them); returns the keys, for `again` if the broker refuses them. InfraError (the keys
        marked again) if the producer refuses one at once."""
        pending, self.pending = self.pending, {}
        topic = self.topic
        try:
            for last in (False, True):
                for key, partition in pending.items():
                    if is_progress_key(key) is last:
                        writer.send(topic, orjson.dumps(key), self.days.encoded(key), partition)
        except KafkaException as exc:  # refused before it is sent (a record over the client's size limit)
            self.again(pending)
            raise InfraError(f"Kafka refused a write of {topic}: {exc}") from None
        self.sent += len(pending)
        self.days.forget_idle()
        return pending

    def again(self, keys: dict[str, int]) -> None:
        """Mark keys whose write the broker refused: the next flush sends their values as they are then."""
        self.pending = {**keys, **self.pending}
