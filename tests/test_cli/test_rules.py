"""`paylimit rules set FILE | set --name ... / show / rm / export` as a user runs them: the real
command in a subprocess, on the real broker's compacted rules topic."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from paylimit.rules import parse_rules
from tests.test_cli.test_user_errors import cli_env, one_line_error, run_all

pytestmark = pytest.mark.integration

RULES = """
rules:
  - name: daily_amount
    measure: amount
    limit: "100000"
    filter: {currency: INR}
  - name: p2p_day
    limit: 10
    filter: {p2p_only: true}
    tiers: [{name: alert}]
"""


def run(env: dict[str, str], *args: str) -> tuple[int, str, str, float]:
    return run_all([list(args)], env)[" ".join(args)]


def test_rules_are_set_shown_exported_and_removed(kafka_bootstrap: str, redis_url: str, tmp_path: Path) -> None:
    env = cli_env(tmp_path / "home", kafka_bootstrap, redis_url, topic_rules=f"rules-{uuid.uuid4().hex[:10]}")
    (tmp_path / "rules.yaml").write_text(RULES)
    code, out, err, _ = run(env, "rules", "set", str(tmp_path / "rules.yaml"))
    assert code == 0 and "rules set: daily_amount, p2p_day" in out, out + err
    code, out, err, _ = run(env, "rules", "set", "--name", "big_inr", "--measure", "amount", "--limit", "250000.50",
                            "--currency", "INR", "--warn", "0", "--user", "alice", "--user", "bob")
    assert code == 0, out + err

    code, out, err, _ = run(env, "rules", "show")
    assert code == 0, err
    assert [line.split("│")[1].strip() for line in out.splitlines() if line.startswith("│")] == [
        "daily_count", "big_inr", "daily_amount", "p2p_day"]
    assert "warn 80%, alert over" in out and "P2P only" in out and "alice, bob" in out

    code, exported, err, _ = run(env, "rules", "export")
    assert code == 0, err
    rules = {r.name: r for r in parse_rules(exported, "export")}
    assert set(rules) == {"big_inr", "daily_amount", "p2p_day"}
    assert str(rules["big_inr"].limit) == "250000.50" and [t.name for t in rules["big_inr"].tiers] == ["alert"]
    assert rules["big_inr"].users == ["alice", "bob"] and rules["daily_amount"] == parse_rules(RULES, "x")[0]

    assert run(env, "rules", "rm", "daily_amount")[0] == 0
    assert {r.name for r in parse_rules(run(env, "rules", "export")[1], "export")} == {"big_inr", "p2p_day"}


def test_rule_mistakes_are_one_line(kafka_bootstrap: str, redis_url: str, tmp_path: Path) -> None:
    env = cli_env(tmp_path / "home", kafka_bootstrap, redis_url, topic_rules=f"rules-{uuid.uuid4().hex[:10]}")
    bad = tmp_path / "bad.yaml"
    bad.write_text("rules:\n  - {name: x, measure: amount, limit: 5, filter: {currency: XYZ}}\n")
    results = run_all([["rules", "set", str(bad)], ["rules", "rm", "nope"], ["rules", "rm", "daily_count"],
                       ["rules", "set", "--name", "y", "--limit", "ten"],
                       ["rules", "set", "--name", "y", "--limit", "10", "--window", "weekly"],
                       ["rules", "set", str(tmp_path / "missing.yaml")]], env)
    assert one_line_error("bad file", results[f"rules set {bad}"]) == \
        f"error: {bad}: rule x.filter.currency: unknown ISO 4217 currency 'XYZ'"
    assert one_line_error("rm", results["rules rm nope"]) == "error: no rule named 'nope' (see `paylimit rules show`)"
    assert one_line_error("rm default", results["rules rm daily_count"]) == "error: daily_count is built in: it cannot be removed"
    assert one_line_error("limit", results["rules set --name y --limit ten"]) == "error: --limit: a number is needed"
    assert one_line_error("window", results["rules set --name y --limit 10 --window weekly"]).startswith("error: --window: ")
    assert "missing.yaml" in one_line_error("missing", results[f"rules set {tmp_path / 'missing.yaml'}"])
