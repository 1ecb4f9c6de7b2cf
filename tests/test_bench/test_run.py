"""Smoke test of the benchmark: `python -m bench --quick` with tiny sizes on the real services.

It checks that the run completes and that the JSON result holds every figure; it never asserts
a speed (performance is measured by the benchmark, not by a timed test).
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bench.__main__ import cli
from bench.load import transaction_value
from paylimit.contracts import Transaction


def test_bench_records_follow_the_contract() -> None:
    tx = Transaction.model_validate_json(transaction_value(random.Random(1), "user-0000001", 1.7e9, "succeeded"))
    assert tx.user_id == "user-0000001" and tx.status == "succeeded" and tx.timezone is None


def _number(d: dict, *path: str) -> float:
    for key in path:
        assert key in d, f"missing {'.'.join(path)}"
        d = d[key]
    assert isinstance(d, (int, float)) and not isinstance(d, bool), f"{'.'.join(path)} is {d!r}"
    return d


@pytest.mark.integration
def test_quick_bench_writes_every_figure(services: tuple[str, str], tmp_path: Path) -> None:
    results = tmp_path / "results"
    env = {"PAYLIMIT_KAFKA_BOOTSTRAP_SERVERS": services[0], "PAYLIMIT_REDIS_URL": services[1],
           "PAYLIMIT_HOME": str(tmp_path / "home")}
    args = ["--quick", "--records", "3000", "--users", "300", "--rates", "200", "--duration", "3", "--cluster",
            "--hot", "2000", "--steps", "200,400", "--step-duration", "2", "--results-dir", str(results)]
    outcome = CliRunner().invoke(cli, args, env=env)
    assert outcome.exit_code == 0, outcome.output

    result = json.loads((results / "latest.json").read_text())
    assert result["failed"] == []
    for key in ("nproc", "cpu_model", "ram_gb"):
        assert result["machine"][key]
    _number(result, "ceiling", "events_per_s")
    _number(result, "ceiling", "steady_events_per_s")
    for workers in ("workers_1", "workers_2", "workers_3"):
        for figure in ("events_per_s", "steady_events_per_s", "ratio", "steady_ratio"):
            _number(result, "catchup", workers, figure)
            _number(result, "cluster", workers, figure)  # the same on a local cluster of three brokers
    _number(result, "cluster", "ceiling", "steady_events_per_s")
    for figure in ("events_per_s", "steady_events_per_s", "ratio"):
        _number(result, "quix_peer", figure)
    _number(result, "catchup", "workers_1", "vs_peer")  # issue 21's target: at least 2x the peer
    [sustained] = result["sustained"]
    for figure in ("achieved_rate", "max_lag", "alerts"):
        _number(sustained, figure)
    for q in ("p50", "p95", "p99"):
        _number(sustained, "latency_ms", q)
    assert sustained["alerts"] > 0  # heavy users cross the limit during the run
    for figure in ("rss_mb", "per_100k_users_mb", "active_users", "above_idle_per_100k_users_mb"):
        _number(result, "memory", figure)
    hot = result["hot_user"]  # one user's 2,000 transactions after spread users, on one partition
    for figure in ("spread_per_s", "hot_per_s", "ratio"):
        _number(hot, figure)
    assert hot["counted"] == hot["records"] - hot["duplicates"] and hot["duplicates"] == 2
    # the rates stepped up until one does not hold: each step's figures and verdict, the highest that held
    steps = result["keeps_up"]["steps"]
    assert [s["target_rate"] for s in steps] == [200, 400][:len(steps)] and steps
    assert all(isinstance(s["held"], bool) and "p99" in s["latency_ms"] for s in steps)
    assert result["keeps_up"]["rate"] == max((s["target_rate"] for s in steps if s["held"]), default=None)
    assert "one worker keeps up with" in outcome.output
    _number(result, "recovery", "to_first_record_s")
    # catching up is a figure too; when it did not happen, the lag left over is the figure
    _number(result, "recovery", "to_caught_up_s" if result["recovery"]["caught_up"] else "lag_at_end")
    assert (results / f"{result['stamp']}.json").exists()
