"""`paylimit chaos`: kill -9 the stream worker N times while a scenario streams in, then verify
(the run itself: `paylimit.runtime.chaos`). Exit 0 only when every kill happened and the
verification is clean."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import orjson
import typer
from rich.table import Table

from paylimit.cli.common import connected_settings, console
from paylimit.runtime.chaos import ChaosResult, run_chaos
from stream_app.state import day_count


def crossing_counted(raw: bytes) -> str | None:
    """The crossing transaction of a stored day, when this very write counted it (it is the day's
    last counted id); None for any other value (a day without one, a partition's progress)."""
    value = orjson.loads(raw)
    if (isinstance(value, dict) and value.get("x") and value["i"][-1] == value["x"]
            and day_count(value) == len(value["i"])):
        return str(value["x"])
    return None


def render(result: ChaosResult) -> Table:
    table = Table("", "count", title=f"chaos run {result.settings_tag} ({result.seconds:.0f}s)")
    table.add_row("kills (all confirmed dead)" if all(k.dead for k in result.kills) else "kills (SOME SURVIVED)",
                  str(len(result.kills)))
    v = result.verification
    if v is None:
        table.add_row("verification", f"not run (simulate exit {result.simulate_exit})")
        return table
    for name, n in v.counts().items():
        table.add_row(name.replace("_", " "), str(n))
    table.add_row("result", "[green]clean[/]" if result.clean else "[red]NOT clean[/]")
    return table


def chaos(
    kills: Annotated[int, typer.Option(min=1, help="How many times the worker is killed with SIGKILL")] = 5,
    seed: Annotated[int, typer.Option(help="Seeds the scenario and the kill moments")] = 1,
    scenario: Annotated[str, typer.Option(help="A shipped scenario's name or a scenario .yaml file")] = "default",
    # a restarted worker takes ~15 s to get its partitions back (the dead member's 10 s session
    # timeout): at 25/s the default scenario still flows through five kills
    rate: Annotated[float, typer.Option(min=1, help="Events per second the simulator sends (paced, so "
                                                    "events flow while the worker is killed)")] = 25.0,
    out: Annotated[Path | None, typer.Option(help="Directory for the simulator's files (default: under "
                                                  "PAYLIMIT_HOME/chaos/TAG)")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object (kills and verification) "
                                                         "instead of the live lines and table")] = False,
) -> None:
    """Kill -9 the stream worker N times while a scenario streams in, restart it, then verify exactly."""
    base = connected_settings()
    result = run_chaos(base, crossing_counted, kills, seed, scenario, rate, out,
                       report=(lambda _m: None) if as_json else (lambda m: console.print(m, highlight=False)))
    if as_json:
        print(json.dumps(result.as_json()))
    else:
        console.print(render(result))
    raise typer.Exit(0 if result.clean else 1)

