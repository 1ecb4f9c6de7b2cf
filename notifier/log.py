"""The notifications log: an append-only JSONL file, one `contracts.Notification` per line.

`append_notification` writes one whole line with a single `write()` on an O_APPEND file, then
flushes and fsyncs, so a delivered alert survives a crash of the process or the machine.
A process killed mid-write can leave a partial last line; readers skip it (it was never
confirmed, so the alert is delivered again), and the next append starts on a fresh line.

`LogIndex` answers "does the log already hold this alert_id?" by scanning the file once and
then only the bytes appended since, which is what the notifier asks after every reservation.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Callable, Iterator

from pydantic import ValidationError

from paylimit.contracts import Notification, encode

log = logging.getLogger("paylimit.notifier")


def _parse(line: bytes) -> Notification | None:
    try:
        return Notification.model_validate_json(line)
    except ValidationError:
        return None


def append_notification(path: Path, notification: Notification) -> None:
    """Append one notification as one JSON line; durable (flush + fsync) when this returns."""
    path.parent.mkdir(parents=True, exist_ok=True)
    line = encode(notification) + b"\n"
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        size = os.fstat(fd).st_size
        if size and _last_byte(path, size) != b"\n":
            # a previous writer died mid-line: start ours on a line of its own
            line = b"\n" + line
        os.write(fd, line)
        os.fsync(fd)
    finally:
        os.close(fd)


def _last_byte(path: Path, size: int) -> bytes:
    with path.open("rb") as fh:
        fh.seek(size - 1)
        return fh.read(1)


def iter_lines(path: Path, start: int = 0) -> Iterator[tuple[int, bytes]]:
    """Complete lines from byte offset `start`, each with the offset just after it."""
    if not path.exists():
        return
    with path.open("rb") as fh:
        fh.seek(start)
        pos = start
        for raw in fh:
            if not raw.endswith(b"\n"):
                return  # partial last line: not (yet) a delivered notification
            pos += len(raw)
            if raw.strip():
                yield pos, raw


def read_notifications(path: Path) -> list[Notification]:
    """Every notification in the log, in delivery order; unparseable lines are skipped with a warning."""
    return read_notifications_at(path)[0]


def read_notifications_at(path: Path) -> tuple[list[Notification], int]:
    """Every notification in the log, and the byte offset after the last complete line (to follow from)."""
    out: list[Notification] = []
    pos = 0
    for pos, raw in iter_lines(path):
        n = _parse(raw)
        if n is None:
            log.warning("notifications log %s: skipping an unparseable line", path)
        else:
            out.append(n)
    return out, pos


def follow_notifications(
    path: Path,
    *,
    start: int = 0,
    poll_interval: float = 0.3,
    stopped: Callable[[], bool] = lambda: False,
) -> Iterator[Notification]:
    """Yield notifications appended from byte offset `start` on (tail -f); waits for the file; ends when `stopped()`."""
    pos = start
    while not stopped():
        if path.exists() and path.stat().st_size < pos:
            pos = 0  # the log was replaced or truncated: read the new one from its start
        moved = False
        for end, raw in iter_lines(path, pos):
            pos, moved = end, True
            n = _parse(raw)
            if n is not None:
                yield n
            if stopped():
                return
        if not moved:
            time.sleep(poll_interval)


class LogIndex:
    """The alert ids the log holds, kept current by reading only what was appended since the last look."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._pos = 0
        self._ids: set[str] = set()

    def refresh(self) -> None:
        if self.path.exists() and self.path.stat().st_size < self._pos:
            self._pos, self._ids = 0, set()
        for end, raw in iter_lines(self.path, self._pos):
            self._pos = end
            n = _parse(raw)
            if n is not None:
                self._ids.add(n.alert_id)

    def contains(self, alert_id: str) -> bool:
        """Whether the log already holds `alert_id` (scans the new part of the log first)."""
        self.refresh()
        return alert_id in self._ids
