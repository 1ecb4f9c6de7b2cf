"""Limit rules as data: the file format (one-line errors naming the field), the default rule, the
deterministic alert ids, and the alert contract a version 1 consumer still reads."""

from __future__ import annotations

from datetime import date, datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Literal

import pytest
from pydantic import AwareDatetime, BaseModel, ConfigDict, ValidationError

from paylimit.contracts import LimitAlert, alert_id_for
from paylimit.errors import ConfigError
from paylimit.rules import DEFAULT_RULE, default_rule, effective_rules, load_rules, parse_rules, rule_alert_id, rules_yaml

EXAMPLE = """
rules:
  - name: daily_amount
    measure: amount
    limit: "100000"
    filter: {currency: INR}
    tiers: [{name: warn, percent: 80}, {name: alert}]
  - name: p2p_day
    limit: 10
    filter: {p2p_only: true, categories: [p2p]}
    users: [alice, bob]
    overrides: {alice: 3}
    tiers: [{name: alert}]
"""


def test_a_rules_file_reads_and_exports_back_to_the_same_rules(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(EXAMPLE)
    rules = load_rules(path)
    assert [r.name for r in rules] == ["daily_amount", "p2p_day"]
    assert rules[0].limit == Decimal("100000") and rules[0].filter.currency == "INR"
    assert rules[1].limit_for("alice") == 3 and rules[1].limit_for("bob") == 10
    assert rules[1].applies_to("bob") and not rules[1].applies_to("carol")
    assert parse_rules(rules_yaml(rules), "export") == rules


@pytest.mark.parametrize(("text", "message"), [
    ("rules: [{name: a}]", "f.yaml: rule a.limit: Field required"),
    ("rules: [{name: a, limit: 5.5}]", "f.yaml: rule a: a count limit is a whole number from 0 to 1000, not 5.5"),
    ("rules: [{name: a, limit: 1001}]", "f.yaml: rule a: a count limit is a whole number from 0 to 1000, not 1001"),
    ("rules: [{name: b, limit: 5, measure: amount}]",
     "f.yaml: rule b: an amount rule needs filter.currency (other currencies do not count)"),
    ("rules: [{name: b, limit: 5, filter: {currency: XYZ}}]", "f.yaml: rule b.filter.currency: unknown ISO 4217 currency 'XYZ'"),
    ("rules: [{name: b, limit: 5, windw: rolling}]", "f.yaml: rule b.windw: Extra inputs are not permitted"),
    ("rules: [{name: b, limit: 5, tiers: [{name: warn}]}]",
     "f.yaml: rule b.tiers.0: a warn tier needs `percent` (0 < percent <= 100); an alert tier has none"),
    ("rules: [{name: daily_count, limit: 3}]",
     "f.yaml: rule daily_count: daily_count is built in (PAYLIMIT_DAILY_LIMIT, `paylimit limits set`)"),
    ("rules: [{name: a, limit: 1}, {name: a, limit: 2}]", "f.yaml: rules: a rule name appears twice"),
    ("rules: [", "f.yaml: not YAML (line 1): expected the node content, but found '<stream end>'"),
])
def test_a_bad_rules_file_is_one_line_naming_the_field(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_rules(text, "f.yaml")
    assert str(err.value) == message and "\n" not in str(err.value)


def test_daily_count_is_always_there_first_with_a_heads_up_at_80_percent() -> None:
    stored = {r.name: r for r in parse_rules(EXAMPLE, "x")}
    rules = effective_rules(stored, 7)
    assert [r.name for r in rules] == [DEFAULT_RULE, "daily_amount", "p2p_day"]
    assert rules[0] == default_rule(7) and rules[0].limit == 7
    assert [(t.name, t.percent) for t in rules[0].tiers] == [("warn", Decimal(80)), ("alert", None)]


def test_alert_ids_are_per_rule_tier_user_and_window_and_daily_counts_alert_keeps_todays() -> None:
    assert rule_alert_id(DEFAULT_RULE, "alert", "u", "2026-03-10") == alert_id_for("u", date(2026, 3, 10))
    ids = {rule_alert_id(rule, tier, user, day) for rule in (DEFAULT_RULE, "daily_amount") for tier in ("warn", "alert")
           for user in ("u", "v") for day in ("2026-03-10", "2026-03-11")}
    assert len(ids) == 16
    assert rule_alert_id("r", "warn", "u", "2026-03-10") == rule_alert_id("r", "warn", "u", "2026-03-10")


class V1Alert(BaseModel):
    """A version 1 consumer's model of an alert, as paylimit's own was before rules (copied)."""

    model_config = ConfigDict(extra="ignore", frozen=True)
    schema_version: Literal[1] = 1
    alert_id: str
    user_id: str
    local_date: date
    timezone: str
    limit: int
    count: int
    crossing_transaction_id: str
    transaction_ids: list[str]
    window_start: AwareDatetime
    window_end: AwareDatetime
    first_seen_at: AwareDatetime
    late: bool
    detected_at: AwareDatetime


def alert(**fields: object) -> LimitAlert:
    at = datetime(2026, 3, 10, tzinfo=timezone.utc)
    base: dict[str, object] = dict(alert_id="a", user_id="u", local_date=date(2026, 3, 10), timezone="UTC", limit=2,
                                   count=3, crossing_transaction_id="t2", transaction_ids=["t0", "t1", "t2"],
                                   window_start=at, window_end=at, first_seen_at=at, late=False, detected_at=at)
    return LimitAlert(**(base | fields))


def test_a_version_1_consumer_reads_daily_counts_alert_and_refuses_the_rest() -> None:
    over = alert()  # the worker writes daily_count's alert as version 1
    assert (over.schema_version, over.rule, over.tier, over.measure, over.value) == (1, DEFAULT_RULE, "alert", "count", 3)
    read = V1Alert.model_validate_json(over.model_dump_json())
    assert (read.alert_id, read.limit, read.count, read.transaction_ids) == ("a", 2, 3, ["t0", "t1", "t2"])
    heads_up = alert(schema_version=2, tier="warn", count=2, value=2)
    with pytest.raises(ValidationError):  # never taken for an over-limit alert
        V1Alert.model_validate_json(heads_up.model_dump_json())
    amount = alert(schema_version=2, rule="daily_amount", measure="amount", limit=Decimal("100000.00"),
                   value=Decimal("100000.01"))
    again = LimitAlert.model_validate_json(amount.model_dump_json())
    assert again.value == Decimal("100000.01") and again.limit == Decimal("100000") and again == amount
