"""`paylimit infra up | down | status | env | stop-broker | start-broker`: the local Kafka brokers
and Redis server."""

from __future__ import annotations

import shlex
from typing import Annotated

import typer
from confluent_kafka import KafkaException
from rich.table import Table

from paylimit.cli.common import console, masked, settings
from paylimit.kafka import ClusterWatch
from paylimit.runtime import local
from paylimit.runtime.kafka_broker import active_controller

app = typer.Typer(help="The local real Kafka broker(s) (KRaft) and Redis server, without Docker.", no_args_is_help=True)


@app.command()
def up(brokers: Annotated[int | None, typer.Option(min=1, max=9, help="Kafka brokers, each also a controller "
                                                   "(3: a cluster that survives losing one); default: as many as "
                                                   "ran last, 1 the first time")] = None,
       secure: Annotated[bool | None, typer.Option("--secure/--insecure", help="Kafka's clients connect with "
                                                   "SCRAM-SHA-512 and a client certificate over TLS (a CA, "
                                                   "certificates and a user made at the first start), Redis "
                                                   "takes a password; `paylimit infra env` prints the "
                                                   "settings; default: as it ran last")] = None) -> None:
    """Start Kafka and Redis (harmless if they already run) and wait until both answer."""
    s = settings()
    with console.status("Starting Kafka and Redis…") as status:

        def announce(msg: str) -> None:
            console.print(f"[cyan]{msg}[/]")
            status.update(msg)

        state = local.up(s, announce=announce, brokers=brokers, secure=secure)
    pids = ", ".join(str(pid) for pid in state.kafka_pids)
    console.print(f"Kafka  [green]{state.kafka_bootstrap}[/]  (pid {pids})" + "  SASL_SSL" * state.secure)
    console.print(f"Redis  [green]{masked(state.redis_url)}[/]  (pid {state.redis_pid})")


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
    """Say what runs: each broker (and the active controller), Redis, and the under-replicated partitions."""
    s = settings()
    state = local.read_state(s)
    nodes = local.nodes(s)
    controller = active_controller(nodes) if state.brokers > 1 and state.kafka_running else None
    table = Table("service", "state", "address", "pid")
    for node in nodes:
        word = _word(state.broker_running(node.id)) + ("  (active controller)" if node.id == controller else "")
        table.add_row("kafka" if state.brokers == 1 else f"kafka-{node.id}", word, node.client_address,
                      str(state.kafka_pids[node.id - 1] or "-"))
    if not nodes:
        table.add_row("kafka", _word(False), "-", "-")
    table.add_row("redis", _word(state.redis_running), masked(state.redis_url) or "-", str(state.redis_pid or "-"))
    for svc in local.running_services(state):  # left by `paylimit demo --keep-running`
        table.add_row(svc["name"], _word(True), svc["address"], str(svc["pid"]))
    console.print(table)
    if state.kafka_running:
        try:
            health = ClusterWatch(local.client_settings(s, state)).health()
            console.print(f"brokers in the cluster: {len(health.brokers)} of {state.brokers}; under-replicated "
                          f"partitions: {health.under_replicated}; without a leader: {health.offline}")
        except KafkaException as exc:
            console.print(f"the cluster did not answer: {exc.args[0].str()}")


@app.command("stop-broker")
def stop_broker(node_id: Annotated[int, typer.Argument(metavar="ID", help="Broker (node) id, 1..N")]) -> None:
    """kill -9 one local Kafka broker: no controlled shutdown, its port refuses connections."""
    local.stop_broker(settings(), node_id)
    console.print(f"Kafka broker {node_id} killed.")


@app.command("start-broker")
def start_broker(node_id: Annotated[int, typer.Argument(metavar="ID", help="Broker (node) id, 1..N")]) -> None:
    """Start a stopped local Kafka broker again (same data and ports) and wait until it answers."""
    local.start_broker(settings(), node_id)
    console.print(f"Kafka broker {node_id} running.")


@app.command()
def env() -> None:
    """Print `export PAYLIMIT_KAFKA_BOOTSTRAP_SERVERS=…` and `export PAYLIMIT_REDIS_URL=…` lines for
    `eval`: exported, so the commands the shell starts next (pytest, paylimit) see them. With a
    secured infra, also the client's security settings: protocol, mechanism, user, password, CA,
    client certificate and key, and the key's password (secrets: this prints them, for `eval`)."""
    s = local.resolve(settings())
    values = s.as_env()
    names = ["PAYLIMIT_KAFKA_BOOTSTRAP_SERVERS", "PAYLIMIT_REDIS_URL"]
    if s.kafka_security_protocol != "PLAINTEXT":
        names += [name for name in values if name.startswith(("PAYLIMIT_KAFKA_SECURITY", "PAYLIMIT_KAFKA_SASL", "PAYLIMIT_KAFKA_SSL"))]
    for name in names:
        print(f"export {name}={shlex.quote(values.get(name, ''))}")


def _word(running: bool) -> str:
    return "[green]running[/]" if running else "[dim]stopped[/]"
