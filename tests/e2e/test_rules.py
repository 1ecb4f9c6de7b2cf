"""Limit rules changed while the system runs, on the real Kafka and Redis: the change applies from
the next record on, what was counted before is kept, and verify against the oracle is clean."""

from __future__ import annotations

import json
import time
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Callable, Iterator, Sequence

import pytest

from paylimit.contracts import SentRecord
from paylimit.rules import Rule, parse_rules, write_rules
from paylimit.runtime.pipeline import Pipeline
from paylimit.settings import Settings
from producer_sim.generator import SimRecord
from producer_sim.oracle import expected_outcome
from producer_sim.publisher import Publisher
from tests.e2e.harness import ask_usage, read_jsonl, verify
from tests.test_faults.helpers import ready, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

DAY = datetime(2024, 10, 7, 4, 0, tzinfo=UTC)  # 09:30 in Kolkata
BEFORE = parse_rules("""
rules:
  - {name: inr_day, measure: amount, limit: "1000.00", filter: {currency: INR}}
  - {name: p2p_day, limit: 3, filter: {p2p_only: true}, tiers: [{name: alert}]}
""", "before")
AFTER = parse_rules("""
rules:
  - {name: inr_day, measure: amount, limit: "500", filter: {currency: INR}}
  - {name: food_day, limit: 1, filter: {categories: [food]}, tiers: [{name: alert}]}
""", "after")  # inr_day lowered, p2p_day removed, food_day added


def payment(tid: str, user: str, minute: int, amount: str, currency: str = "INR", p2p: bool = False,
            category: str = "bills") -> SimRecord:
    at = DAY + timedelta(minutes=minute)
    doc = {"transaction_id": tid, "user_id": user, "amount": amount, "currency": currency, "status": "succeeded",
           "occurred_at": at.isoformat(), "merchant_id": None if p2p else "m-1", "category": "p2p" if p2p else category}
    return SimRecord(user, json.dumps(doc).encode(), None, at)


def send(settings: Settings, records: list[SimRecord], first_seq: int) -> list[SentRecord]:
    result = Publisher(settings, records).run()
    assert not result.failed, result.failed
    return [r.model_copy(update={"seq": r.seq + first_seq}) for r in result.sent]


@contextmanager
def running(settings: Settings, rules: Sequence[Rule]) -> Iterator[Pipeline]:
    """A pipeline on `settings`, `rules` written before its worker starts; yielded once the worker is ready."""
    write_rules(settings, rules)
    pipeline = Pipeline(settings)
    pipeline.start()
    try:
        wait_for(lambda: ready(pipeline, pipeline.workers[0]), 120, "the worker to be ready")
        yield pipeline
    finally:
        pipeline.stop()


def test_a_rule_changed_mid_day_applies_from_the_next_record_on(make_settings: Callable[..., Settings],
                                                                 tmp_path: Path) -> None:
    settings = make_settings()
    with running(settings, BEFORE) as pipeline:
        first = send(settings, [
            payment("a1", "ann", 1, "300.00"), payment("a2", "ann", 2, "300.00"),
            payment("a3", "ann", 3, "300.00"),  # 900.00: inr_day's heads-up (80 % of 1000)
            payment("u1", "usd", 4, "2000", "USD"),  # another currency: never counted by inr_day
            payment("p1", "pat", 5, "5", p2p=True), payment("p2", "pat", 6, "5", p2p=True),
            payment("p3", "pat", 7, "5", p2p=True),  # 3 of 3 P2P: not over yet
        ], 0)
        pipeline.wait_drained(timeout=120)
        write_rules(settings, AFTER, removed=["p2p_day"])
        second = send(settings, [
            payment("a4", "ann", 8, "0.01"),  # 900.01 > 500: the alert, at the limit in force now
            payment("p4", "pat", 9, "5", p2p=True),  # p2p_day removed: no alert
            payment("b1", "bob", 10, "400.00"),  # 400 >= 80 % of 500
            payment("b2", "bob", 11, "100.00"),  # 500: at the limit, not over
            payment("b3", "bob", 12, "100.01"),  # over
            payment("d1", "dan", 13, "1", category="food"), payment("d2", "dan", 14, "1", category="food"),  # 2 > 1
        ], len(first))
        pipeline.wait_drained(timeout=120)

        outcome = expected_outcome(first + second, settings, datetime.now(UTC), {}, BEFORE, {len(first): AFTER})
        fired = {(a.user_id, a.rule, a.tier): a for a in outcome.alerts}
        assert set(fired) == {("ann", "inr_day", "warn"), ("ann", "inr_day", "alert"), ("bob", "inr_day", "warn"),
                              ("bob", "inr_day", "alert"), ("dan", "food_day", "alert")}
        assert (fired["ann", "inr_day", "alert"].limit, fired["ann", "inr_day", "alert"].value) == (500, Decimal("900.01"))
        expected = tmp_path / "expected_alerts.jsonl"
        expected.write_text("".join(a.model_dump_json() + "\n" for a in outcome.alerts))
        result = verify(settings, expected)
        assert (result["missing"], result["extra"], result["duplicate"], result["wrong_field"]) == (0, 0, 0, 0), result
        assert result["delivered"] == result["expected"] == len(read_jsonl(expected)) == 5

        # the usage view answers per rule, with the rules in force now (p2p_day removed)
        status, body = ask_usage(pipeline.worker_url(), "ann", "2024-10-07", time.monotonic() + 30)
        assert status == 200, body
        rules = {r["rule"]: r for r in body["rules"]}
        assert set(rules) == {"daily_count", "food_day", "inr_day"}
        assert {k: rules["inr_day"][k] for k in ("value", "limit", "remaining", "over_limit", "window_start")} == {
            "value": "900.01", "limit": "500", "remaining": "0", "over_limit": True,
            "window_start": "2024-10-07T00:00:00+05:30"}
        assert (rules["daily_count"]["value"], rules["daily_count"]["limit"]) == (4, settings.daily_limit)
