"""The notifications log: this notifier's ledger of what it recorded, JSONL segments on its own disk.

One `contracts.Notification` per line. The active segment is `PAYLIMIT_HOME/notifications.jsonl`;
when it reaches `PAYLIMIT_LOG_SEGMENT_BYTES` it is renamed `notifications-000001.jsonl` (then
-000002, …) and a new one begins, so no file grows without end. Readers read the closed
segments in number order, then the active one: every line once, in the order it was written.
Nothing is read back at start but the active segment's last line (`NotificationLog.last`).

`NotificationLog.append` writes one whole line on an O_APPEND file and fsyncs it, or, if any
byte did not reach the disk (ENOSPC, a short write, EIO), truncates the segment back to its
size before and raises: a partial line is never left for a confirm to follow. `undo` removes
the last line again (the notifier appends before it records, and takes the line back when the
record does not happen; see `notifier.delivery`). A process killed mid-write can still leave a
partial last line: `last()` cuts it off at the next start, and readers stop before it (a
writer may be mid-line while they read); a complete line that does not parse is an error.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Iterator

from pydantic import ValidationError

from paylimit.contracts import Notification, encode
from paylimit.errors import PaylimitError

TAIL_CHUNK = 64 * 1024


class CorruptLog(PaylimitError):
    """A complete line of the log that is not a notification."""


def segments(path: Path) -> list[Path]:
    """The closed segments of the log whose active segment is `path`, oldest first, then `path`."""
    closed = sorted((p for p in path.parent.glob(f"{path.stem}-*{path.suffix}") if _number(path, p) is not None),
                    key=lambda p: _number(path, p) or 0)
    return [*closed, path]


def _number(path: Path, segment: Path) -> int | None:
    m = re.fullmatch(rf"{re.escape(path.stem)}-(\d+){re.escape(path.suffix)}", segment.name)
    return int(m.group(1)) if m else None


class NotificationLog:
    """Appends to the log at `path`, rotating at `segment_bytes`; one writer per log."""

    def __init__(self, path: Path, segment_bytes: int) -> None:
        self.path, self.segment_bytes = path, segment_bytes
        path.parent.mkdir(parents=True, exist_ok=True)
        self._next = max((_number(path, p) or 0 for p in segments(path)[:-1]), default=0) + 1

    def append(self, notification: Notification) -> int:
        """Append one line, durable (fsync) when this returns; the segment's size before it (for `undo`).
        OSError with the segment as it was if not every byte was written."""
        self._rotate()
        line = encode(notification) + b"\n"
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            before = os.fstat(fd).st_size
            try:
                written = os.write(fd, line)
                if written != len(line):
                    raise OSError(f"short write to {self.path}: {written} of {len(line)} bytes (disk full?)")
                os.fsync(fd)
            except OSError:
                os.ftruncate(fd, before)  # the partial line goes; the error goes up
                os.fsync(fd)
                raise
        finally:
            os.close(fd)
        return before

    def undo(self, size: int) -> None:
        """Cut the active segment back to `size` (take back the last line, not recorded after all)."""
        fd = os.open(self.path, os.O_WRONLY)
        try:
            os.ftruncate(fd, size)
            os.fsync(fd)
        finally:
            os.close(fd)

    def last(self) -> tuple[Notification, int] | None:
        """The active segment's last line and the size before it; a partial last line (a writer
        killed mid-line) is cut off first."""
        if not self.path.exists():
            return None
        with self.path.open("rb") as fh:
            size = fh.seek(0, os.SEEK_END)
            tail, start = b"", size
            while start > 0 and tail.count(b"\n") < 2:
                start = max(0, start - TAIL_CHUNK)
                fh.seek(start)
                tail = fh.read(size - start)
        end = tail.rfind(b"\n")  # of the last complete line
        if end + 1 < len(tail):
            self.undo(start + end + 1)
        if end < 0:
            return None
        begin = tail.rfind(b"\n", 0, end) + 1  # 0: the file's first line (the loop read from 0 then)
        return _parse(tail[begin:end + 1], self.path), start + begin

    def _rotate(self) -> None:
        try:
            size = self.path.stat().st_size
        except FileNotFoundError:
            return
        if size >= self.segment_bytes:
            os.rename(self.path, self.path.with_name(f"{self.path.stem}-{self._next:06d}{self.path.suffix}"))
            self._next += 1
            dir_fd = os.open(self.path.parent, os.O_RDONLY)
            try:
                os.fsync(dir_fd)  # the rename survives a crash
            finally:
                os.close(dir_fd)


def _parse(line: bytes, path: Path) -> Notification:
    try:
        return Notification.model_validate_json(line)
    except ValidationError as exc:
        raise CorruptLog(f"{path}: a line that is not a notification: {exc.errors()[0]['msg']}") from None


def iter_lines(path: Path) -> Iterator[bytes]:
    """The complete lines of one segment; a partial last line (a writer mid-line) is not one yet."""
    if not path.exists():
        return
    with path.open("rb") as fh:
        for raw in fh:
            if not raw.endswith(b"\n"):
                return
            yield raw


def read_notifications(path: Path) -> list[Notification]:
    """Every notification of the log whose active segment is `path`, in the order written (all
    segments); CorruptLog on a line that is not one."""
    return [_parse(raw, segment) for segment in segments(path) for raw in iter_lines(segment)]
