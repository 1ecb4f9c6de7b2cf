"""The stepped rate's verdict: when one sustained step holds, and the line the run prints from it."""

from __future__ import annotations

from typing import Any

from bench.report import keeps_up_line
from bench.steps import held
from bench.sustained import SPREAD_TX_PER_USER, spread_users


def step(rate: int = 10_000, achieved: float = 10_000.0, drain_s: float | None = 1.0, p99: float = 60.0,
         alerts: int = 400) -> dict[str, Any]:
    return {"target_rate": rate, "achieved_rate": achieved, "drain_s": drain_s,
            "latency_ms": {"count": alerts, "p50": 20.0, "p95": 40.0, "p99": p99}}


def test_a_step_holds_only_with_its_rate_a_short_drain_and_p99_under_100_ms() -> None:
    assert held(step())
    assert held(step(achieved=9_750.0))  # within 3 % of the offered rate
    assert not held(step(achieved=9_600.0))  # the load generator fell behind: the rate was not offered
    assert held(step(drain_s=5.0)) and not held(step(drain_s=5.5))
    assert not held(step(drain_s=None))  # did not drain within the drain timeout
    assert not held(step(p99=100.0)) and held(step(p99=99.9))
    assert not held(step(alerts=0))  # no alert, no latency to show


def test_the_line_names_the_highest_step_that_held_or_says_none_did() -> None:
    steps = [step(5_000) | {"held": True}, step(7_500) | {"held": True}, step(10_000, p99=180.0) | {"held": False}]
    line = keeps_up_line({"keeps_up": {"rate": 7_500, "steps": steps}})
    assert line == "one worker keeps up with 7,500 tx/s with p99 under 100 ms on this machine"
    assert "highest offered" in keeps_up_line({"keeps_up": {"rate": 7_500, "steps": steps[:2]}})
    none = keeps_up_line({"keeps_up": {"rate": None, "steps": [step(5_000, p99=300.0) | {"held": False}]}})
    assert none.startswith("one worker keeps up with none of the stepped rates (not even 5,000 tx/s)")
    assert "failed" in keeps_up_line({"keeps_up": {"error": "InfraError: boom"}})


def test_a_long_fast_run_spreads_its_traffic_over_more_users_so_they_stay_under_the_limit() -> None:
    assert spread_users(100_000, 1_000, 8) == 100_000
    assert spread_users(100_000, 10_000, 120) == 400_000
    assert 10_000 * 120 / spread_users(100_000, 10_000, 120) == SPREAD_TX_PER_USER
