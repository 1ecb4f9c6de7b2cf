"""The notifications log: append, read, a crashed writer's partial line, the index, follow."""

from __future__ import annotations

import threading
from pathlib import Path

from notifier.log import LogIndex, append_notification, follow_notifications, read_notifications, \
    read_notifications_at
from tests.test_notifier.factory import make_alert, notification_of


def test_append_and_read(tmp_path: Path) -> None:
    path = tmp_path / "home" / "notifications.jsonl"
    assert read_notifications(path) == []
    a, b = notification_of(make_alert("a")), notification_of(make_alert("b"))
    append_notification(path, a)
    append_notification(path, b)
    assert read_notifications(path) == [a, b]
    assert len(path.read_text().splitlines()) == 2


def test_partial_line_of_a_killed_writer_is_skipped_and_not_glued_to(tmp_path: Path) -> None:
    path = tmp_path / "n.jsonl"
    a, b = notification_of(make_alert("a")), notification_of(make_alert("b"))
    append_notification(path, a)
    with path.open("ab") as fh:
        fh.write(b'{"alert_id": "half-writ')
    assert read_notifications(path) == [a]
    index = LogIndex(path)
    assert index.contains(a.alert_id) and not index.contains("half-writ")
    append_notification(path, b)
    assert read_notifications(path) == [a, b]
    assert index.contains(b.alert_id)


def test_index_sees_appends_by_others(tmp_path: Path) -> None:
    path = tmp_path / "n.jsonl"
    index = LogIndex(path)
    a = notification_of(make_alert("a"))
    assert not index.contains(a.alert_id)
    append_notification(path, a)
    assert index.contains(a.alert_id)


def test_follow_yields_new_lines(tmp_path: Path) -> None:
    path = tmp_path / "n.jsonl"
    first = notification_of(make_alert("first"))
    append_notification(path, first)
    _, end = read_notifications_at(path)
    done = threading.Event()
    got: list[str] = []

    def reader() -> None:
        for n in follow_notifications(path, start=end, poll_interval=0.05, stopped=done.is_set):
            got.append(n.user_id)
            if len(got) == 2:
                done.set()

    t = threading.Thread(target=reader)
    t.start()
    append_notification(path, notification_of(make_alert("second")))
    append_notification(path, notification_of(make_alert("third")))
    t.join(timeout=10)
    done.set()
    assert got == ["second", "third"]
