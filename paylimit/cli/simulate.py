"""`paylimit simulate`: send a seeded scenario to Kafka and write what was sent and what must follow.

Writes `DIR/events.jsonl` (SentRecord lines, in send order), `DIR/expected_alerts.jsonl`
(ExpectedAlert lines, sorted by alert_id) and `DIR/expected_dead_letters.jsonl` (seq, partition,
offset, error; by seq). The per-user limit overrides are written to the limits topic first.
"""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Annotated

import orjson
import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from paylimit.cli.common import connected_settings, console
from paylimit.errors import ConfigError, InfraError
from paylimit.kafka import ensure_topics
from producer_sim.generator import Plan, generate
from producer_sim.oracle import Expected
from producer_sim.publisher import PublishResult
from producer_sim.scenario import load_scenario
from producer_sim.simulation import EVENTS, EXPECTED_ALERTS, EXPECTED_DEAD_LETTERS, run_plan


def summary_table(plan: Plan, result: PublishResult, outcome: Expected) -> Table:
    statuses: Counter[str] = Counter()
    for record in result.sent:
        if record.expect_error is None:
            doc = orjson.loads(record.value)
            statuses[doc.get("status", "?")] += 1
    kinds = Counter(r.kind for r in plan.records)
    table = Table("", "count", title=f"simulate {plan.scenario.name} (seed {plan.seed})")
    table.add_row("sent (delivered)", str(len(result.sent)))
    table.add_row("failed deliveries", str(len(result.failed)))
    for status in ("succeeded", "failed", "declined"):
        table.add_row(f"status {status}", str(statuses[status]))
    table.add_row("malformed", str(kinds["malformed"]))
    table.add_row("duplicates", str(kinds["duplicate"]))
    table.add_row("users", str(len({r.key for r in plan.records})))
    table.add_row("limit overrides", str(len(plan.overrides)))
    table.add_row("expected dead letters", str(len(outcome.dead_letters)))
    table.add_row("expected alerts", str(len(outcome.alerts)))
    table.add_row("  of which late", str(sum(a.late for a in outcome.alerts)))
    return table


def simulate(
    scenario: Annotated[str, typer.Option(help="A shipped scenario's name (e.g. default) or a scenario .yaml file")],
    out: Annotated[Path, typer.Option(help="Directory for events.jsonl, expected_alerts.jsonl, expected_dead_letters.jsonl")],
    seed: Annotated[int, typer.Option(help="Random seed: same scenario and seed give the same events")] = 1,
    users: Annotated[int | None, typer.Option(min=1, help="Rescale the scenario's populations to about N users")] = None,
    rate: Annotated[float | None, typer.Option(min=0, help="Cap on events sent per second (0 = no cap)")] = None,
    days: Annotated[float | None, typer.Option(min=0.01, help="Simulated days of traffic (replaces the scenario's)")] = None,
    duration: Annotated[float | None, typer.Option(min=1, help="Simulated seconds of traffic (instead of --days)")] = None,
    speed: Annotated[float | None, typer.Option(min=0, help="Virtual clock: simulated seconds per real second (0 = as fast as possible)")] = None,
) -> None:
    """Send a seeded, replayable scenario to Kafka and write the oracle's expected alerts."""
    if days is not None and duration is not None:
        raise ConfigError("give --days or --duration, not both")
    span = timedelta(days=days) if days is not None else timedelta(seconds=duration) if duration is not None else None
    plan = generate(load_scenario(scenario), seed, users=users, span=span)
    settings = connected_settings()
    ensure_topics(settings)
    with Progress(TextColumn("sending {task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console, transient=False) as progress:
        task = progress.add_task(plan.scenario.name, total=len(plan.records))
        run = run_plan(settings, plan, out, rate=rate, speed=speed, on_progress=lambda n: progress.advance(task, n))
    result = run.published
    console.print(summary_table(plan, result, run.outcome))
    console.print(f"wrote {EVENTS}, {EXPECTED_ALERTS} and {EXPECTED_DEAD_LETTERS} in {out}")
    if result.failed:
        first = next(iter(result.failed.values()))
        raise InfraError(f"{len(result.failed)} of {len(plan.records)} records were not delivered (first: {first})")
