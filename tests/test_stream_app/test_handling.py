"""One record's outcome, pure: a dead letter with its reason, or the decision on the user's day;
and what a batch sends for it."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

from paylimit.settings import get_settings
from stream_app.counting import Outcome
from stream_app.handling import Outputs, handle
from stream_app.reader import Record
from stream_app.state import DayCount

SETTINGS = get_settings(kafka_bootstrap_servers="localhost:1")
NOW = datetime(2026, 3, 20, tzinfo=timezone.utc)


def record(offset: int, value: bytes) -> Record:
    return Record("tx", 3, offset, b"u1", value)


def body(tid: str, at: str, **extra: Any) -> bytes:
    return json.dumps({"transaction_id": tid, "user_id": "u1", "amount": "12.50", "currency": "INR",
                       "status": "succeeded", "occurred_at": at, **extra}).encode()


def test_a_record_that_does_not_parse_is_a_dead_letter_with_where_it_came_from() -> None:
    handled = handle(record(7, b"{not json"), lambda key: None, None, lambda user: 2, NOW, SETTINGS)
    assert handled.decision is None and handled.letter is not None
    assert (handled.letter.error, handled.letter.source_partition, handled.letter.source_offset) == ("invalid_json", 3, 7)
    outputs = Outputs()
    outputs.add(record(7, b"{not json"), handled, NOW)
    assert bool(outputs) and not outputs.alerts and outputs.letters[0][0] == b"u1"


def test_a_day_ended_past_the_retention_is_too_late() -> None:
    late_stream = datetime(2026, 3, 19, tzinfo=timezone.utc).timestamp()
    handled = handle(record(1, body("t1", "2026-03-10T10:00:00+05:30")), lambda key: None, late_stream,
                     lambda user: 2, NOW, SETTINGS)
    assert handled.letter is not None and handled.letter.error == "too_late"


def test_the_crossing_record_decides_an_alert_on_the_day_it_was_given() -> None:
    days: dict[str, DayCount] = {}
    outputs = Outputs()
    for i in range(3):
        rec = record(i, body(f"t{i}", f"2026-03-10T1{i}:00:00+05:30"))
        handled = handle(rec, days.get, None, lambda user: 2, NOW, SETTINGS)
        assert handled.letter is None and handled.decision is not None and handled.key == "u1|2026-03-10"
        if handled.decision.day is not None:
            days[handled.key] = handled.decision.day
        outputs.add(rec, handled, NOW)
    assert handled.decision.outcome is Outcome.CROSSED
    assert [(alert.crossing_transaction_id, resent) for alert, resent in outputs.alerts] == [("t2", False)]
