"""`python -m bench`: run the benchmark, print the table, write bench/results/<timestamp>.json."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.console import Console

from bench import report
from bench.config import BenchConfig, quick
from bench.run import run
from paylimit.settings import get_settings

cli = typer.Typer(add_completion=False)


@cli.command()
def main(
    quick_run: Annotated[bool, typer.Option("--quick", help="Small sizes: every phase in a minute or two")] = False,
    records: Annotated[Optional[int], typer.Option(help=f"Transactions pre-loaded (default {BenchConfig.records:,})")] = None,
    users: Annotated[Optional[int], typer.Option(help=f"Users they are spread over (default {BenchConfig.users:,})")] = None,
    partitions: Annotated[Optional[int], typer.Option(help=f"Partitions of the bench topics (default {BenchConfig.partitions})")] = None,
    rates: Annotated[Optional[str], typer.Option(help="Sustained rates, tx/s, comma-separated (default "
                                          f"{','.join(map(str, BenchConfig.rates))})")] = None,
    duration: Annotated[Optional[float], typer.Option(help=f"Seconds per sustained rate (default {BenchConfig.duration:.0f})")] = None,
    steps: Annotated[Optional[str], typer.Option(help="Rates stepped up until one worker no longer keeps up, tx/s, "
                                          f"comma-separated (default {','.join(map(str, BenchConfig.steps))})")] = None,
    step_duration: Annotated[Optional[float], typer.Option(help="Seconds per stepped rate (default "
                                                                f"{BenchConfig.step_duration:.0f})")] = None,
    hot: Annotated[Optional[int], typer.Option(help="The hot user's transactions in a day (default "
                                                    f"{BenchConfig.hot:,})")] = None,
    catchup_timeout: Annotated[Optional[float], typer.Option(help="Seconds a catch-up may take before it is reported from its progress")] = None,
    peer: Annotated[bool, typer.Option(help="Run the Quix Streams peer")] = True,
    cluster: Annotated[bool, typer.Option(help="Also the catch-ups with 1, 2, 3 workers on a local cluster "
                                          "of three brokers")] = False,
    results_dir: Annotated[Path, typer.Option(help="Where the JSON results go")] = Path("bench/results"),
    json_out: Annotated[bool, typer.Option("--json", help="Print the result as JSON instead of the table")] = False,
) -> None:
    """Measure paylimit against a bare-consumer ceiling and a Quix Streams peer, in one run."""
    config = quick(BenchConfig()) if quick_run else BenchConfig()
    given: dict[str, Any] = {"records": records, "users": users, "partitions": partitions, "duration": duration,
             "catchup_timeout": catchup_timeout, "step_duration": step_duration, "hot": hot,
             "rates": _ints("--rates", rates) if rates else None, "steps": _ints("--steps", steps) if steps else None}
    config = replace(config, **{k: v for k, v in given.items() if v is not None}, peer=peer, cluster=cluster, results_dir=results_dir)
    console = Console(stderr=json_out)
    if not console.is_terminal:
        console = Console(stderr=json_out, width=140)  # a log file gets the table unwrapped
    result = run(config, get_settings(), console)
    path = report.write(result, config.results_dir)
    if json_out:
        print(report.json.dumps(result, indent=2))
    else:
        console.print(report.table(result))
        console.print(report.keeps_up_line(result))
        console.print(f"written {path} (and latest.json)")
    if result.get("failed"):
        raise typer.Exit(1)


def _ints(option: str, text: str) -> tuple[int, ...]:
    try:
        return tuple(int(r) for r in text.split(",") if r.strip())
    except ValueError:
        raise typer.BadParameter(f"{option} must be integers separated by commas, not {text!r}") from None


if __name__ == "__main__":
    cli()
