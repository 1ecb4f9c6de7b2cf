"""verify(): missing, extra, duplicate and wrong-field alerts, each found and named."""

from __future__ import annotations

from datetime import date, timedelta, timezone
from pathlib import Path

import pytest

from paylimit.errors import ConfigError
from paylimit.verify import read_expected, verify
from tests.test_notifier.factory import expected_of, make_alert, notification_of

A = make_alert("alice")
B = make_alert("bob", zone="America/New_York", day=date(2025, 3, 9))
C = make_alert("carol", late=True)


def test_all_delivered_exactly_is_clean() -> None:
    result = verify([expected_of(a) for a in (A, B, C)], [notification_of(a) for a in (C, A, B)])
    assert result.clean
    assert result.counts() == {"expected": 3, "delivered": 3, "missing": 0, "extra": 0, "duplicate": 0,
                               "wrong_field": 0}


def test_nothing_expected_nothing_delivered_is_clean() -> None:
    assert verify([], []).clean


def test_missing() -> None:
    result = verify([expected_of(A), expected_of(B)], [notification_of(A)])
    assert result.missing == [B.alert_id]
    assert not result.clean and not result.extra and not result.duplicate and not result.wrong_field


def test_extra() -> None:
    result = verify([expected_of(A)], [notification_of(A), notification_of(C)])
    assert result.extra == [C.alert_id]
    assert not result.clean and not result.missing


def test_duplicate() -> None:
    result = verify([expected_of(A)], [notification_of(A), notification_of(A)])
    assert result.duplicate == [A.alert_id]
    assert result.delivered == 2 and not result.clean and not result.missing and not result.extra


@pytest.mark.parametrize("field,value", [
    ("count", 12),
    ("limit", 5),
    ("crossing_transaction_id", "other"),
    ("transaction_ids", list(reversed(A.transaction_ids))),
    ("late", True),
    ("timezone", "UTC"),
    ("local_date", date(2025, 3, 11)),
    ("window_start", A.window_start + timedelta(minutes=1)),
    ("first_seen_at", A.first_seen_at - timedelta(seconds=1)),
])
def test_wrong_field(field: str, value: object) -> None:
    result = verify([expected_of(A)], [notification_of(A, **{field: value})])
    assert result.wrong_field == {A.alert_id: [field]}
    assert not result.clean and not result.missing and not result.extra


def test_datetimes_compare_as_instants() -> None:
    same_instant = A.window_start.astimezone(timezone.utc)
    result = verify([expected_of(A)], [notification_of(A, window_start=same_instant)])
    assert result.clean


def test_detected_and_delivered_at_are_not_compared() -> None:
    other = notification_of(A, detected_at=A.detected_at + timedelta(days=1))
    assert verify([expected_of(A)], [other]).clean


def test_read_expected(tmp_path: Path) -> None:
    path = tmp_path / "expected_alerts.jsonl"
    path.write_text("".join(expected_of(a).model_dump_json() + "\n" for a in (A, B)) + "\n")
    assert [e.alert_id for e in read_expected(path)] == [A.alert_id, B.alert_id]


def test_read_expected_missing_or_bad_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        read_expected(tmp_path / "nope.jsonl")
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"alert_id": "x"}\n')
    with pytest.raises(ConfigError, match="bad.jsonl:1"):
        read_expected(bad)
