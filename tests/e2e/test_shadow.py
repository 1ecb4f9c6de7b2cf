"""A shadow rule on the real Kafka and Redis: evaluated live, its alerts on the shadow topic and
never delivered; promoted, it is live from the next record, and a tier it fired in shadow for a
window is not sent again as live for that window. verify against the oracle stays clean."""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Callable

import pytest

from paylimit.kafka import read_to_end
from paylimit.rules import parse_rules
from paylimit.settings import Settings
from producer_sim.oracle import expected_outcome
from tests.e2e.harness import ask_usage, paylimit, verify
from tests.e2e.test_rules import payment, running, send

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

RULES = parse_rules("""
rules:
  - {name: food_day, limit: 1, filter: {categories: [food]}, tiers: [{name: alert}], shadow: true}
  - {name: inr_day, measure: amount, limit: "1000.00", filter: {currency: INR}, tiers: [{name: alert}]}
""", "rules")


def alerts_on(settings: Settings, topic: str) -> list[dict[str, Any]]:
    changes, _ = read_to_end(settings, topic, None, f"test-{uuid.uuid4().hex[:8]}", timeout=30)
    return [json.loads(value) for _, _, value in changes if value is not None]


def fired(alerts: list[dict[str, Any]]) -> set[tuple[str, str, str]]:
    return {(a["user_id"], a["rule"], a["tier"]) for a in alerts}


def checked(settings: Settings, tmp_path: Path, sent: list[Any], changes: dict[int, Any]) -> None:
    outcome = expected_outcome(sent, settings, datetime.now(UTC), {}, RULES, changes)
    expected = tmp_path / "expected_alerts.jsonl"
    expected.write_text("".join(a.model_dump_json() + "\n" for a in outcome.alerts))
    result = verify(settings, expected)
    assert (result["missing"], result["extra"], result["duplicate"], result["wrong_field"]) == (0, 0, 0, 0), result
    assert result["delivered"] == result["expected"] == len(outcome.alerts), result


def test_a_shadow_rule_alerts_nobody_until_promoted(make_settings: Callable[..., Settings], tmp_path: Path) -> None:
    settings = make_settings()
    with running(settings, RULES) as pipeline:
        first = send(settings, [
            payment("a1", "ann", 1, "10", category="food"), payment("a2", "ann", 2, "10", category="food"),  # 2 > 1
            payment("b1", "bob", 3, "10", category="food"),  # 1: not over
            payment("c1", "cat", 4, "600"), payment("c2", "cat", 5, "600"),  # inr_day, live: over 1000
        ], 0)
        pipeline.wait_drained(timeout=120)
        assert fired(alerts_on(settings, settings.topic_alerts_shadow)) == {("ann", "food_day", "alert")}
        assert fired(alerts_on(settings, settings.topic_alerts)) == {("cat", "inr_day", "alert")}
        checked(settings, tmp_path, first, {})  # nothing delivered for ann: the oracle expects nothing
        status, body = ask_usage(pipeline.worker_url(), "ann", "2024-10-07", time.monotonic() + 30)
        assert status == 200, body
        usage = {r["rule"]: r for r in body["rules"]}
        assert (usage["food_day"]["value"], usage["food_day"]["over_limit"], usage["food_day"].get("shadow")) == (2, True, True)
        assert "shadow" not in usage["inr_day"]

        paylimit(settings, "rules", "promote", "food_day")
        with_error = paylimit(settings, "rules", "promote", "inr_day", check=False)  # not a shadow rule
        assert with_error.returncode != 0 and "no shadow rule named 'inr_day'" in with_error.stderr
        second = send(settings, [
            payment("a3", "ann", 6, "10", category="food"),  # fired in shadow today: not sent again as live
            payment("b2", "bob", 7, "10", category="food"),  # 2 > 1, promoted: a live alert
        ], len(first))
        pipeline.wait_drained(timeout=120)
        assert fired(alerts_on(settings, settings.topic_alerts_shadow)) == {("ann", "food_day", "alert")}
        assert fired(alerts_on(settings, settings.topic_alerts)) == {("cat", "inr_day", "alert"),
                                                                     ("bob", "food_day", "alert")}
        promoted = [r.model_copy(update={"shadow": False}) for r in RULES]
        checked(settings, tmp_path, first + second, {len(first): promoted})
        metrics = pipeline.worker_metrics()  # the dashboard's live / shadow counts
        assert (metrics["alerts_sent"], metrics["shadow_alerts_sent"]) == (2, 1), metrics

        report = json.loads(paylimit(settings, "shadow", "report", "--json").stdout)
        assert report["rows"] == [{"local_date": "2024-10-07", "rule": "food_day", "tier": "alert",
                                   "shadow_users": ["ann"], "live_users": 2, "both": [], "shadow_only": ["ann"]}]
        assert json.loads(paylimit(settings, "shadow", "report", "--since", "2024-10-08", "--json").stdout) == {"rows": []}
        table = paylimit(settings, "shadow", "report").stdout
        assert "food_day" in table and "ann" in table, table

