"""Every faust internal the worker uses, in one place, each with why; `check` says at start (and
tests/test_stream_app/test_faust_internals.py says in `make test`) when faust's version or one of
them changed, instead of a worker that misbehaves later. `FaustGroup` is faust's consumer group as
the worker's core sees it (`stream_app.checkpoint.Group`), on these.

faust-streaming is pinned (pyproject.toml); upgrading it means reading each of these again.
"""

from __future__ import annotations

from typing import Any, Sequence

import faust
from aiokafka.consumer.fetcher import Fetcher
from faust.stores import STORES, memory
from faust.tables import TableManager
from faust.transport.consumer import Consumer
from faust.types import TP, AppT

#: the version these internals were read in
FAUST_VERSION = "0.15.3"


def store_dict(table: Any) -> dict:
    """A memory table's values as its store's own dict: one lookup per read, not four layers of
    faust's Table -> Store -> dict (`stream_app.batch.Days`, the limits read once per record)."""
    return table.data.data


def forget_key_partitions(store: Any) -> None:
    """Make the memory store keep no key -> changelog partition map (`Store._key_partition`: faust's
    recovery sets and pops keys in it, and only the store's `on_recovery_completed` reads it, which
    `stream_app.restore` replaces): a second dict of every key, 40 bytes a user-day."""
    store._key_partition = NoKeyPartitions()


class NoKeyPartitions(dict):
    """A `_key_partition` that keeps nothing (faust sets and pops keys in it)."""

    def __setitem__(self, key: Any, partition: int) -> None:
        pass


def recovered(app: faust.App) -> bool:
    """faust's table recovery is complete: it has no public flag for it."""
    return app.tables.recovery.completed.is_set()  # type: ignore[attr-defined]


async def commit_offsets(app: faust.App, offsets: dict[TP, int]) -> bool:
    """Commit these offsets for the group: faust's public `commit` commits only its ack list, and
    the transactions are never acked in faust (the worker reads them itself)."""
    return bool(await app.consumer._commit(offsets))  # type: ignore[attr-defined]


def assigned_actives(app: AppT) -> set[TP]:
    """The active (not standby) partitions of this worker's assignment: a store is only told all of
    them together."""
    return set(app.assignor.assigned_actives())


def register_store(scheme: str, target: str) -> None:
    """Make `scheme://` table stores the class `target` ("module:Class"): faust picks a store class
    by URL scheme from this registry, and has no public way to add one."""
    STORES.aliases[scheme] = target


def shorten_fetch_wait(app: faust.App, ms: int) -> None:
    """faust fixes its consumer's fetch wait at 1.5 s (aiokafka's `fetch_max_wait_ms`), and the
    table recovery's offset requests queue behind a fetch on the same connection: a restart
    waited 3 s for two of them. Set on the started consumer's fetcher, which reads it for each
    fetch request (called when a rebalance starts, before the recovery asks)."""
    consumer = getattr(app.consumer._thread, "_consumer", None)  # type: ignore[attr-defined]
    fetcher = getattr(consumer, "_fetcher", None)
    if fetcher is not None:
        fetcher._fetch_max_wait_ms = ms


class PromptTableManager(TableManager):
    """faust's table manager without the one-second sleep its `on_start` begins with (a wait for
    tables an app may still define: this one defines both before it starts). A second of every
    start and restart, with the rest of the method as faust 0.15.3 has it (`App(TableManager=...)`
    is the public way in)."""

    async def on_start(self) -> None:
        if not self.should_stop:
            await self._update_channels()
            await self.recovery.start()


class FaustGroup:
    """The consumer group as the core sees it (`stream_app.checkpoint.Group`): faust's."""

    def __init__(self, app: faust.App, topic: str) -> None:
        self.app, self.topic = app, topic

    def ready(self) -> bool:
        return not self.app.rebalancing and recovered(self.app)

    def assigned(self) -> list[int]:
        return [tp.partition for tp in self.app.consumer.assignment() if tp.topic == self.topic]

    def generation(self) -> int:
        return self.app.consumer_generation_id

    def pause(self, partitions: Sequence[int]) -> None:
        self.app.consumer.pause_partitions({TP(self.topic, p) for p in partitions})

    def stopping(self) -> bool:
        return self.app.should_stop

    def rebalancing(self) -> bool:
        return self.app.rebalancing

    async def commit(self, offsets: dict[int, int]) -> bool:
        return await commit_offsets(self.app, {TP(self.topic, p): o for p, o in offsets.items()})


class FaustChanged(RuntimeError):
    pass


def check(app: faust.App, table: Any) -> None:
    """FaustChanged, saying what, unless faust is the version read and `app` and its memory
    `table` have every internal above."""
    found = {
        f"faust {FAUST_VERSION}": faust.__version__ == FAUST_VERSION,
        "the memory store's dict (Store.data)": isinstance(getattr(table.data, "data", None), dict),
        "the memory store's on_recovery_completed": callable(getattr(memory.Store, "on_recovery_completed", None)),
        "the table recovery's completed event": hasattr(getattr(app.tables, "recovery", None), "completed"),
        "Consumer._commit": callable(getattr(Consumer, "_commit", None)),
        "the assignor's assigned_actives()": callable(getattr(app.assignor, "assigned_actives", None)),
        "the stores registry (STORES.aliases)": isinstance(getattr(STORES, "aliases", None), dict),
        "TableManager._update_channels": callable(getattr(TableManager, "_update_channels", None)),
        "aiokafka's Fetcher._fetch_max_wait_ms": "_fetch_max_wait_ms" in Fetcher.__init__.__code__.co_names,
    }
    missing = [what for what, ok in found.items() if not ok]
    if missing:
        raise FaustChanged(f"faust {faust.__version__} differs from what stream_app/faust_internals.py was "
                           f"written for: {', '.join(missing)}; read that module again before upgrading")
