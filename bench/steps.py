""""One worker keeps up with N tx/s": the sustained run's rates stepped up until one does not hold.

A step holds when the load generator achieved its rate (within `RATE_SHARE`), the lag drained
within `DRAIN_S` seconds after it stopped, and the alerts' p99 latency was under `P99_MS`. The
steps run on one pipeline (one worker and the notifier) with bench/sustained.py's producer, lag
sampler and latencies, and stop at the first step that does not hold: N is the highest that did.
"""

from __future__ import annotations

from typing import Any, Callable

from bench.sustained import run_sustained
from paylimit.settings import Settings

RATE_SHARE = 0.97  # of the offered rate, acknowledged by the broker
DRAIN_S = 5.0
P99_MS = 100.0


def held(step: dict) -> bool:
    """Whether one sustained rate's figures (bench/sustained.py's dict) meet the three conditions;
    a step with no alert has no latency to show and does not hold."""
    drain_s, latency = step.get("drain_s"), step.get("latency_ms", {})
    return (step.get("achieved_rate", 0) >= RATE_SHARE * step["target_rate"]
            and drain_s is not None and drain_s <= DRAIN_S
            and latency.get("count", 0) > 0 and latency["p99"] < P99_MS)


def run_steps(settings: Settings, steps: list[int], step_duration: float, users: int, heavy_share: float,
              drain_timeout: float, on_rate: Callable[[int], Callable[[int], None]]) -> dict[str, Any]:
    """{"rate": the highest step that held (None if none did), "steps": each step's figures and `held`}."""
    run = run_sustained(settings, steps, step_duration, users, heavy_share, drain_timeout, on_rate,
                        last=lambda step: not held(step))
    out = [step | {"held": held(step)} for step in run.rates]
    return {"rate": max((s["target_rate"] for s in out if s["held"]), default=None), "steps": out,
            "conditions": {"rate_share": RATE_SHARE, "drain_s": DRAIN_S, "p99_ms": P99_MS}}

