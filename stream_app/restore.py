"""`BulkRestoredStore`: the `days` table's store, faust's in-memory store restored in bulk.

faust restores a memory table by reading its changelog record by record through its own consumer and
recovery loop, about 5,000 records a second here: 23 s of a restart after a minute at 1,000 tx/s
(this store: under a second), and more the longer the worker ran. This store reads its table's
active changelog partitions itself when partitions are assigned, with a confluent-kafka consumer, up
to the end each had then, before faust's recovery starts; `persisted_offset` then tells faust's
recovery how far each partition is restored (faust's store API for stores that keep state), so faust
reads only what came after. A partition this worker keeps across a rebalance is read on from where
it was; one it loses is read from the start when it comes back.

Keys and values go in as the worker writes them (`stream_app.changelog`): the key's JSON string,
the value's JSON bytes.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, Mapping, Set, cast

import orjson
from confluent_kafka import OFFSET_BEGINNING
from faust.stores import memory
from faust.types import TP

from paylimit.kafka import Change, read_to_end
from paylimit.settings import Settings
from stream_app.batch import PROGRESS, is_progress_key
from stream_app.faust_internals import assigned_actives, forget_key_partitions, register_store
from stream_app.state import day_placed


def read_changelog(settings: Settings, topic: str, starts: dict[int, int],
                   timeout: float = 60.0) -> tuple[list[Change], dict[int, int]]:
    """`paylimit.kafka.read_to_end`, as the restore's own group (it never commits)."""
    return read_to_end(settings, topic, starts, f"{settings.app_id}-restore", timeout)


def changelog_partition(key: str, raw: bytes) -> int:
    """A key's changelog partition: its source partition (the worker writes a key's changes there),
    in a day's value, or a progress key's name."""
    return int(key[len(PROGRESS):]) if is_progress_key(key) else day_placed(raw).p


class BulkRestoredStore(memory.Store):
    """faust's memory store, restored with `read_changelog` on every assignment; the table's
    `options` carry the settings (`{"settings": Settings}`)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        forget_key_partitions(self)  # a key's changelog partition is its value's (`on_recovery_completed`)
        self._restored: dict[TP, int] = {}  # active changelog partition -> last offset in memory

    def persisted_offset(self, tp: TP) -> int | None:
        return self._restored.get(tp)

    def _apply(self, changes: list[Change]) -> None:
        data = self.data
        for _, key, value in changes:
            if key is None:
                continue
            name = orjson.loads(key)
            if value is None:
                data.pop(name, None)
            else:
                data[name] = value

    async def on_recovery_completed(self, active_tps: Set[TP], standby_tps: Set[TP]) -> None:
        """Drop the keys of the partitions this worker no longer has (faust's memory store does it
        by the partition it keeps per key; here a key's partition is in its value, or its name)."""
        partitions = {tp.partition for tp in active_tps}
        data = self.data
        for key in [key for key, raw in data.items() if changelog_partition(key, raw) not in partitions]:
            del data[key]

    async def on_rebalance(self, assigned: Set[TP], revoked: Set[TP], newly_assigned: Set[TP],
                           generation_id: int = 0) -> None:
        await super().on_rebalance(assigned, revoked, newly_assigned, generation_id)
        topic = self.table.changelog_topic.get_topic_name()
        actives = {tp for tp in assigned_actives(self.app) if tp.topic == topic}
        for tp in set(self._restored) - actives:
            del self._restored[tp]  # read again from the start if it comes back
        starts = {tp.partition: self._restored[tp] + 1 if tp in self._restored else OFFSET_BEGINNING
                  for tp in actives}
        settings = cast(Mapping[str, Any], self.options)["settings"]
        # read off the event loop, applied on it (the web views read the same dict)
        changes, last = await asyncio.get_running_loop().run_in_executor(
            None, read_changelog, settings, topic, starts)
        self._apply(changes)
        for partition, offset in last.items():
            self._restored[TP(topic, partition)] = offset


#: the store URL of a table restored in bulk: faust picks a table's store class by its URL scheme
STORE_URL = "paylimit://memory"  # a URL with no host or path is falsy: faust would use its default store
register_store("paylimit", f"{__name__}:BulkRestoredStore")
