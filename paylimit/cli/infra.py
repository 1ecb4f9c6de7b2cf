"""`paylimit infra up | down | status | env`: the local Kafka broker and Redis server."""

from __future__ import annotations

import shlex

import typer
from rich.table import Table

from paylimit.cli.common import console, settings
from paylimit.runtime import local

app = typer.Typer(help="The local real Kafka broker (KRaft) and Redis server, without Docker.", no_args_is_help=True)


@app.command()
def up() -> None:
    """Start Kafka and Redis (harmless if they already run) and wait until both answer."""
    s = settings()
    with console.status("Starting Kafka and Redis…") as status:

        def announce(msg: str) -> None:
            console.print(f"[cyan]{msg}[/]")
            status.update(msg)

        state = local.up(s, announce=announce)
    console.print(f"Kafka  [green]{state.kafka_bootstrap}[/]  (pid {state.kafka_pid})")
    console.print(f"Redis  [green]{state.redis_url}[/]  (pid {state.redis_pid})")


@app.command()
def down() -> None:
    """Stop what `paylimit demo --keep-running` left running, then Kafka and Redis; their data
    stays under PAYLIMIT_HOME."""
    s = settings()
    services = [svc["name"] for svc in local.running_services(local.read_state(s))]
    local.down(s)
    console.print(f"{', '.join(services)}, " * bool(services) + "Kafka and Redis stopped.")


@app.command()
def status() -> None:
    """Say what runs."""
    state = local.read_state(settings())
    table = Table("service", "state", "address", "pid")
    table.add_row("kafka", _word(state.kafka_running), state.kafka_bootstrap or "-", str(state.kafka_pid or "-"))
    table.add_row("redis", _word(state.redis_running), state.redis_url or "-", str(state.redis_pid or "-"))
    for svc in local.running_services(state):  # left by `paylimit demo --keep-running`
        table.add_row(svc["name"], _word(True), svc["address"], str(svc["pid"]))
    console.print(table)


@app.command()
def env() -> None:
    """Print `export PAYLIMIT_KAFKA_BOOTSTRAP_SERVERS=…` and `export PAYLIMIT_REDIS_URL=…` lines for
    `eval`: exported, so the commands the shell starts next (pytest, paylimit) see them."""
    s = local.resolve(settings())
    print(f"export PAYLIMIT_KAFKA_BOOTSTRAP_SERVERS={shlex.quote(str(s.kafka_bootstrap_servers))}")
    print(f"export PAYLIMIT_REDIS_URL={shlex.quote(s.redis_url.get_secret_value() if s.redis_url else '')}")


def _word(running: bool) -> str:
    return "[green]running[/]" if running else "[dim]stopped[/]"
