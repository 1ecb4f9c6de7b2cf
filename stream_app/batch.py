"""`Days`, the `days` table's values (days and partitions' progress) as the counting reads and
writes them, and `StagedWrites`, the writes one batch stages, seen by its own reads and written to
the table at once; the changed keys are marked for the changelog (`stream_app.changelog`).

Values live in the table's memory store as their JSON bytes (a few hundred bytes per user-day). A
hot day, counted more than `LIVE_AFTER` times, is also kept decoded (`Days.live`), and its bytes in
the store are brought up to date when the changelog is written: decoding and encoding a day of
20,000 hashes per batch would make a hot user's records cost more the more they have.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import orjson

from stream_app.state import DayCount, Progress, decode_day, encode_day

if TYPE_CHECKING:
    from stream_app.changelog import Changelog

PROGRESS = "__progress__|"
LIVE_AFTER = 100
LIVE_IDLE = 60.0


def progress_key(partition: int) -> str:
    """The `days` key of a partition's `Progress`."""
    return f"{PROGRESS}{partition}"


def is_progress_key(key: str) -> bool:
    """Day keys end with `|YYYY-MM-DD`, so even a user id that starts like one is not taken for it."""
    return key.startswith(PROGRESS) and key[len(PROGRESS):].isdigit()


def encode_value(value: Any) -> bytes:
    """A table value as the JSON bytes kept in memory and in the changelog, in an exact-size copy:
    the bytes orjson returns keep its ~4 KB output buffer, 12x a day value's size."""
    return memoryview(orjson.dumps(value)).tobytes()


class Days:
    """The table's values: its memory store's own dict (one lookup, not four layers), and the hot
    days decoded. A decoded day stands for its key only while the store still holds the very
    bytes it was last written as: a restore (or a revocation) that replaces them is seen."""

    def __init__(self, values: dict) -> None:
        self.values = values  # the memory store's own dict (`stream_app.faust_internals.store_dict`)
        self.live: dict[str, tuple[DayCount, bytes, float]] = {}  # key -> day, its bytes, when counted

    def progress(self, partition: int) -> Progress | None:
        raw = self.values.get(progress_key(partition))
        return Progress.from_json(orjson.loads(raw)) if raw is not None else None

    def day(self, key: str) -> DayCount | None:
        raw = self.values.get(key)
        if raw is None:
            return None
        live = self.live.get(key)
        if live is not None and live[1] is raw:
            return live[0]
        return decode_day(key, raw)

    def put(self, key: str, value: Any) -> None:
        """Write one value (a DayCount, a Progress, or None to delete it) of a key."""
        if value is None:
            self.values.pop(key, None)
            self.live.pop(key, None)
            return
        if isinstance(value, DayCount) and value.count > LIVE_AFTER:
            raw, live = self.values.get(key), self.live.get(key)
            if raw is None or live is None or live[1] is not raw:  # newly hot, or restored since
                raw = self.values[key] = encode_day(value)
            self.live[key] = (value, raw, time.monotonic())  # the bytes are brought up to date by `encoded`
        elif isinstance(value, DayCount):
            self.values[key] = encode_day(value)
        else:
            self.values[key] = encode_value(value.to_json() if isinstance(value, Progress) else value)

    def forget_idle(self) -> None:
        """Forget the decoded days not counted for `LIVE_IDLE` seconds; called when the changelog
        was written, so their bytes are up to date. A day no longer counted need not cost its
        decoded size (about 2 MB at 20,000 hashes, against 270 KB encoded)."""
        idle = time.monotonic() - LIVE_IDLE
        self.live = {key: live for key, live in self.live.items() if live[2] > idle}

    def encoded(self, key: str) -> bytes | None:
        """A key's value as its bytes now (a hot day encoded again, and stored so)."""
        raw = self.values.get(key)
        live = self.live.get(key)
        if raw is not None and live is not None and live[1] is raw:
            raw = self.values[key] = encode_day(live[0])
            self.live[key] = (live[0], raw, live[2])
        return raw


class StagedWrites:
    """One batch's view of the `days` table: reads see the batch's own earlier writes; `write`
    writes each changed key once to the table, encoded exactly as faust's json codec would (the
    changelog sends these bytes, so faust restores the table from it), and marks it for the
    changelog on the key's source partition. A day is changed in place by the counting: a hot
    one is the very object `Days` keeps (see `stream_app.changelog` for why that is safe).
    """

    def __init__(self, days: Days) -> None:
        self.days = days
        self.staged: dict[str, tuple[int, Any]] = {}

    def day(self, key: str) -> DayCount | None:
        staged = self.staged.get(key)
        return staged[1] if staged is not None else self.days.day(key)

    def set(self, partition: int, key: str, value: Any) -> None:
        self.staged[key] = (partition, value)

    def write(self, changelog: Changelog) -> None:
        """Write the staged keys to the table and mark them for `changelog`."""
        for key, (partition, value) in self.staged.items():
            self.days.put(key, value)
            changelog.mark(key, partition)
        self.staged.clear()
