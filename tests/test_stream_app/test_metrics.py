"""The worker's record accounting and its stalls: every consumed record in exactly one bucket, a
stall said once when it begins and gone when it resumes."""

from __future__ import annotations

import logging

import pytest

from stream_app.counting import Outcome
from stream_app.metrics import Metrics


def test_every_consumed_record_is_in_one_bucket() -> None:
    metrics = Metrics()
    for outcome in (Outcome.COUNTED, Outcome.CROSSED, Outcome.DUPLICATE, Outcome.RESEND, Outcome.NOT_SUCCEEDED):
        metrics.outcome(outcome)
    metrics.dead_letter("invalid_json")
    got = metrics.as_dict()
    assert got["consumed"] == got["counted"] + got["duplicates"] + got["not_succeeded"] + got["dead_lettered"] == 6
    assert (got["alerts_sent"], got["alerts_resent"], got["dead_lettered_by_error"]) == (1, 1, {"invalid_json": 1})
    metrics.outcome(Outcome.CROSSED, 3, shadow=2)  # two of its three alerts went to the shadow topic
    assert (metrics.as_dict()["alerts_sent"], metrics.as_dict()["shadow_alerts_sent"]) == (2, 2)


def test_a_stall_is_said_once_counted_once_and_gone_when_it_resumes(caplog: pytest.LogCaptureFixture) -> None:
    metrics = Metrics()
    with caplog.at_level(logging.WARNING, logger="paylimit.worker"):
        metrics.stall("the state", [2, 1, 2], "Kafka refused it")
        metrics.stall("the state", [1, 2], "Kafka refused it")
        assert metrics.as_dict()["stalled_partitions"].keys() == {"1", "2"}
        metrics.resume("the state")
    assert [r.getMessage().split(":")[0] for r in caplog.records] == ["STALLED", "resumed"]
    got = metrics.as_dict()
    assert (got["stalls"], got["stalled_partitions"], got["stalled_reasons"]) == (1, {}, {})
