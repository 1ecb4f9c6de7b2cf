"""The notifications export: an append-only JSONL file, one `contracts.Notification` per line.

The notifier appends each notification here after it is in the shared record (`paylimit.notification_record`),
for people who tail files; it is this notifier's copy, not the record, and nothing reads it back.

`append_notification` writes one whole line with a single `write()` on an O_APPEND file, then
flushes and fsyncs, so a delivered alert survives a crash of the process or the machine.
A process killed mid-write can leave a partial last line; readers skip it, and the next append
starts on a fresh line.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Iterator

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
    """Every notification in the file, in export order; unparseable lines are skipped with a warning."""
    out: list[Notification] = []
    for _, raw in iter_lines(path):
        n = _parse(raw)
        if n is None:
            log.warning("notifications export %s: skipping an unparseable line", path)
        else:
            out.append(n)
    return out
