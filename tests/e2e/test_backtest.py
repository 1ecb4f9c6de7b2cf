"""`paylimit backtest` on the real Kafka and Redis: over the topic a live pipeline counted, the rules
in force raise exactly what the live system delivered (verify clean), other rules show their
difference, and the back-test writes nothing to Kafka (no record, no committed offset)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

import pytest
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient

from paylimit.rules import parse_rules, rules_yaml
from paylimit.settings import Settings
from tests.e2e.harness import paylimit, verify, watermarks
from tests.e2e.test_rules import payment, running, send

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

IN_FORCE = parse_rules("""
rules:
  - {name: inr_day, measure: amount, limit: "1000.00", filter: {currency: INR}}
  - {name: p2p_day, limit: 3, filter: {p2p_only: true}, tiers: [{name: alert}]}
""", "in force")
TRIED = parse_rules("""
rules:
  - {name: inr_day, measure: amount, limit: "500", filter: {currency: INR}}
  - {name: p2p_day, limit: 4, filter: {p2p_only: true}, tiers: [{name: alert}]}
""", "tried")  # inr_day lowered (bob goes over it), p2p_day raised (pat no longer does)


def _kafka_snapshot(settings: Settings) -> tuple[dict[str, dict[int, tuple[int, int]]], list]:
    """Every watermark of the run's topics, and the live workers' committed offsets."""
    consumer = Consumer(settings.kafka_client_config(**{"group.id": settings.app_id, "enable.auto.commit": False}))
    try:
        run = settings.app_id.removeprefix("paylimit-")
        topics = sorted(t for t in consumer.list_topics(timeout=10).topics if run in t)
        marks = {t: watermarks(consumer, t) for t in topics}
        tps = [TopicPartition(settings.topic_transactions, p) for p in marks[settings.topic_transactions]]
        committed = [(tp.partition, tp.offset) for tp in consumer.committed(tps, timeout=10)]
        return marks, committed
    finally:
        consumer.close()


def test_a_backtest_of_the_rules_in_force_equals_what_was_delivered(make_settings: Callable[..., Settings],
                                                                    tmp_path: Path) -> None:
    settings = make_settings()
    with running(settings, IN_FORCE) as pipeline:
        sent = send(settings, [
            payment("a1", "ann", 1, "600.00"), payment("a2", "ann", 2, "500.00"),  # 1100: inr_day warn + alert
            payment("b1", "bob", 3, "400.00"), payment("b2", "bob", 4, "200.00"),  # 600: under 1000, over 500
            *(payment(f"p{i}", "pat", 5 + i, "5", p2p=True) for i in range(4)),  # 4 > 3 P2P
            payment("a1", "ann", 1, "600.00"),  # a duplicate: counted once, live and in the back-test
        ], 0)
        pipeline.wait_drained(timeout=120)
    before = _kafka_snapshot(settings)

    in_force = tmp_path / "in_force.yaml"
    in_force.write_text(rules_yaml(IN_FORCE))
    out = tmp_path / "backtest"
    result = json.loads(paylimit(settings, "backtest", "--rules", str(in_force), "--json", "--out", str(out)).stdout)
    assert result["records"] == len(sent) and result["alerts"] == 3, result
    assert all(not r["new_users"] and not r["no_longer_users"] for r in result["rows"]), result
    check = verify(settings, out / "alerts.jsonl")
    assert check["exit_code"] == 0 and check["expected"] == check["delivered"] == 3, check

    # the simulator's events file gives the same alerts as the topic
    events = tmp_path / "events.jsonl"
    events.write_text("".join(r.model_dump_json() + "\n" for r in sent))
    from_file = tmp_path / "from_file"
    paylimit(settings, "backtest", "--rules", str(in_force), "--events", str(events), "--out", str(from_file))
    assert (from_file / "alerts.jsonl").read_text() == (out / "alerts.jsonl").read_text()

    tried = tmp_path / "tried.yaml"
    tried.write_text(rules_yaml(TRIED))
    diff = json.loads(paylimit(settings, "backtest", "--rules", str(tried), "--json", "--from", "2024-10-07",
                               "--to", "2024-10-07").stdout)
    rows = {(r["rule"], r["tier"]): r for r in diff["rows"]}
    assert {k: (r["users"], r["new_users"], r["no_longer_users"]) for k, r in rows.items()} == {
        ("inr_day", "warn"): (2, ["bob"], []),  # bob's 400 is 80 % of 500
        ("inr_day", "alert"): (2, ["bob"], []),
        ("p2p_day", "alert"): (0, [], ["pat"]),
    }
    assert rows["inr_day", "alert"]["earliest_crossing"] == "2024-10-07T04:01:00+00:00"  # ann's a1, now over
    assert json.loads(paylimit(settings, "backtest", "--rules", str(tried), "--json", "--from", "2024-10-08")
                      .stdout)["rows"] == []

    # nothing produced to any of the run's topics, nothing committed, no group left behind
    assert _kafka_snapshot(settings) == before
    groups = AdminClient(settings.kafka_client_config()).list_consumer_groups().result(timeout=10).valid
    assert not [g.group_id for g in groups if "backtest" in g.group_id]
