"""The notifications log: append, read, segments, a crashed writer's partial line, a full disk (a real tmpfs)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from notifier.log import CorruptLog, NotificationLog, read_notifications, segments
from tests.test_notifier.factory import make_alert, notification_of


def test_append_and_read(tmp_path: Path) -> None:
    path = tmp_path / "home" / "notifications.jsonl"
    log = NotificationLog(path, 1 << 20)
    assert read_notifications(path) == [] and log.last() is None
    a, b = notification_of(make_alert("a")), notification_of(make_alert("b"))
    log.append(a)
    before = log.append(b)
    assert read_notifications(path) == [a, b] and log.last() == (b, before)
    log.undo(before)
    assert read_notifications(path) == [a]


def test_a_killed_writers_partial_line_is_cut_off_at_start(tmp_path: Path) -> None:
    path = tmp_path / "n.jsonl"
    a, b = notification_of(make_alert("a")), notification_of(make_alert("b"))
    NotificationLog(path, 1 << 20).append(a)
    with path.open("ab") as fh:
        fh.write(b'{"alert_id": "half-writ')
    assert read_notifications(path) == [a]  # a reader stops before a line being written
    log = NotificationLog(path, 1 << 20)
    assert log.last() == (a, 0)  # and the next start cuts it off
    log.append(b)
    assert read_notifications(path) == [a, b]


def test_a_complete_line_that_is_not_a_notification_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "n.jsonl"
    path.write_bytes(b'{"not": "a notification"}\n')
    with pytest.raises(CorruptLog):
        read_notifications(path)


def test_segments_rotate_and_readers_see_every_line_once_in_order(tmp_path: Path) -> None:
    path = tmp_path / "notifications.jsonl"
    written = [notification_of(make_alert(f"user-{i}")) for i in range(12)]
    log = NotificationLog(path, 2000)  # a line is about 700 bytes
    for n in written[:7]:
        log.append(n)
    log = NotificationLog(path, 2000)  # a restart carries on numbering
    for n in written[7:]:
        log.append(n)
    closed = segments(path)[:-1]
    assert len(closed) >= 3
    assert [p.name for p in closed] == [f"notifications-{i:06d}.jsonl" for i in range(1, len(closed) + 1)]
    line = len(path.read_bytes().splitlines()[-1]) + 1
    assert all(2000 <= p.stat().st_size < 2000 + line for p in closed)
    assert read_notifications(path) == written


def test_a_short_write_on_a_full_disk_is_rolled_back_and_raised(small_disk: Path) -> None:
    path = small_disk / "notifications.jsonl"
    log = NotificationLog(path, 1 << 20)
    small = notification_of(make_alert("small"))
    log.append(small)
    big = notification_of(make_alert("big", limit=400))  # about 12 KiB: only part of it fits
    with pytest.raises(OSError) as raised:
        log.append(big)
    assert "short write" in str(raised.value)  # a part of the line was written, then taken back
    assert read_notifications(path) == [small] and path.read_bytes().endswith(b"\n")
    (small_disk / "filler").unlink()
    log.append(big)
    assert read_notifications(path) == [small, big]


def test_a_restart_reads_only_the_active_segments_tail(tmp_path: Path) -> None:
    """Measured with an audit hook in a child process: the files it opens, and the bytes it reads."""
    path = tmp_path / "notifications.jsonl"
    log = NotificationLog(path, 4000)
    for i in range(40):
        log.append(notification_of(make_alert(f"user-{i}")))
    assert len(segments(path)) > 5
    probe = f"""
import sys
opened = []
sys.addaudithook(lambda event, args: opened.append(str(args[0])) if event == "open" else None)
from pathlib import Path
from notifier.log import NotificationLog
log = NotificationLog(Path({str(path)!r}), 4000)
log.last()
print(sorted({{p for p in opened if p.startswith({str(tmp_path)!r})}}))
"""
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).parents[2]).stdout
    assert eval(out) == [str(path)]  # not one closed segment
