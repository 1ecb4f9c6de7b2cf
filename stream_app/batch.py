"""`Batch`: one batch's view of the worker's `days` table, written to the table at once; the
changed keys are marked for the changelog (`stream_app.changelog`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson

if TYPE_CHECKING:
    from stream_app.changelog import Changelog

PROGRESS = "__progress__|"


def progress_key(partition: int) -> str:
    """The `days` key of a partition's progress: {"o": the next offset to count, "t": its stream time}."""
    return f"{PROGRESS}{partition}"


def is_progress_key(key: str) -> bool:
    """Day keys end with `|YYYY-MM-DD`, so even a user id that starts like one is not taken for it."""
    return key.startswith(PROGRESS) and key[len(PROGRESS):].isdigit()


def encode_value(value: Any) -> bytes:
    """A table value as the JSON bytes kept in memory and in the changelog, in an exact-size copy:
    the bytes orjson returns keep its ~4 KB output buffer, 12x a day value's size."""
    return memoryview(orjson.dumps(value)).tobytes()


class Batch:
    """One batch's view of the `days` table: reads see the batch's own earlier writes; `write`
    writes each changed key once to the table, encoded exactly as faust's json codec would (the
    changelog sends these bytes, so faust restores the table from it), and marks it for the
    changelog on the key's source partition.
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

    def write(self, changelog: Changelog) -> None:
        """Write the staged keys to the table and mark them for `changelog`."""
        for key, (partition, value) in self.staged.items():
            if value is None:
                self.values.pop(key, None)
            else:
                self.values[key] = encode_value(value)  # kept encoded: a few hundred bytes per user-day
            changelog.mark(key, partition)
        self.staged.clear()
