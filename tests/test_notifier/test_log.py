"""The notifications export: append, read, a crashed writer's partial line."""

from __future__ import annotations

from pathlib import Path

from notifier.log import append_notification, read_notifications
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
    append_notification(path, b)
    assert read_notifications(path) == [a, b]
