"""One simulator run as a function, for `paylimit simulate`, the demo and the end-to-end tests.

`run_plan` writes the limit overrides and rules, sends the records, asks the oracle what must follow and
writes the three files of DESIGN.md section 5:
`events.jsonl` (SentRecord lines, send order), `expected_alerts.jsonl` (ExpectedAlert lines, by
alert_id) and `expected_dead_letters.jsonl` ({seq, partition, offset, error} lines, by seq).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

import orjson

from paylimit.contracts import SentRecord
from paylimit.errors import ConfigError
from paylimit.rules import Rule, write_rules
from paylimit.settings import Settings
from producer_sim.generator import Plan
from producer_sim.oracle import Expected, expected_outcome
from producer_sim.publisher import PublishResult, Publisher, publish_limits

EVENTS = "events.jsonl"
EXPECTED_ALERTS = "expected_alerts.jsonl"
EXPECTED_DEAD_LETTERS = "expected_dead_letters.jsonl"


@dataclass(frozen=True)
class SimulationResult:
    plan: Plan
    published: PublishResult
    outcome: Expected
    out: Path


def write_outputs(out: Path, sent: list[SentRecord], outcome: Expected) -> None:
    """The three machine-readable files of a run (ConfigError when the directory is unusable)."""
    try:
        out.mkdir(parents=True, exist_ok=True)
        (out / EVENTS).write_text("".join(r.model_dump_json() + "\n" for r in sent))
        (out / EXPECTED_ALERTS).write_text("".join(a.model_dump_json() + "\n" for a in outcome.alerts))
        letters = (orjson.dumps(asdict(d)).decode() + "\n" for _, d in sorted(outcome.dead_letters.items()))
        (out / EXPECTED_DEAD_LETTERS).write_text("".join(letters))
    except OSError as exc:
        raise ConfigError(f"cannot write to {out}: {exc.strerror or exc}") from None


def run_plan(
    settings: Settings,
    plan: Plan,
    out: Path,
    *,
    rate: float | None = None,
    speed: float | None = None,
    on_progress: Callable[[int], None] | None = None,
    write_limits: bool = True,
    now: datetime | None = None,
    rules: Sequence[Rule] | None = None,
) -> SimulationResult:
    """Send `plan` (overrides and rules first unless `write_limits` is False, e.g. the demo wrote them before
    starting the worker), then write the outputs. `now` is the wall clock for the oracle's
    too_far_in_future check (default: after sending). `rules`: the limit rules in force besides
    daily_count (default: the scenario's)."""
    rules = plan.scenario.rules if rules is None else rules
    if write_limits:
        publish_limits(settings, plan.overrides)
        write_rules(settings, rules)
    published = Publisher(settings, plan.records, rate=rate, speed=speed, on_progress=on_progress).run()
    outcome = expected_outcome(published.sent, settings, now or datetime.now(UTC), plan.overrides, rules)
    write_outputs(out, published.sent, outcome)
    return SimulationResult(plan, published, outcome, out)
