"""`paylimit chaos`: kill -9 the stream worker N times while a scenario streams in, then verify.

A run on its own topics, consumer groups and notifications log (a fresh tag under the configured
app id, so earlier runs cannot blur the verification), on the configured Kafka and Redis or the
running local infra:
  1. a worker and a notifier start (the very `paylimit worker` / `paylimit notifier` commands);
  2. `paylimit simulate` sends the scenario, paced (`--rate`), so events flow while the worker dies;
  3. kill 1 waits for the first changelog record of the `days` table that holds a crossing
     transaction (the count of an over-the-limit transaction was just stored) and kills the worker
     at once: its alert may not be sent yet, and the replay must still send it; the output says
     whether the alert was already on the alerts topic at that moment;
  4. every other kill comes at a seeded random moment once the restarted worker is consuming again;
     each kill is checked (the process is gone) and followed by a restart;
  5. when everything is drained, delivered notifications are compared with the oracle's alerts.
Exit 0 only when every kill happened and the verification is clean.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import time
import urllib.request
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Annotated, Any, Callable

import orjson
import typer
from confluent_kafka import Consumer, TopicPartition
from rich.table import Table

from paylimit.cli.common import connected_settings, console
from paylimit.kafka import ensure_topics
from paylimit.runtime.pipeline import Pipeline, ServiceProcess
from paylimit.settings import Settings
from paylimit.verify import Verification, read_expected, verify
from stream_app.state import day_count


@dataclass
class Kill:
    number: int
    kind: str  # "crossing" (right after a crossing count was stored) or "random"
    pid: int
    at: float  # seconds since the run started
    consumed_before: int  # records the killed worker had processed (its /stats), -1 if unknown
    dead: bool  # the process was gone after the kill
    restarted_pid: int | None = None
    crossing_transaction_id: str | None = None
    alert_already_sent: bool | None = None  # for "crossing": was its alert on the topic when killed?


@dataclass
class ChaosResult:
    settings_tag: str
    kills: list[Kill] = field(default_factory=list)
    verification: Verification | None = None
    simulate_exit: int | None = None
    seconds: float = 0.0

    @property
    def clean(self) -> bool:
        return (self.verification is not None and self.verification.clean and self.simulate_exit == 0
                and all(k.dead for k in self.kills))

    def as_json(self) -> dict[str, Any]:
        v = self.verification
        return {"tag": self.settings_tag, "seconds": round(self.seconds, 1), "simulate_exit": self.simulate_exit,
                "kills": [asdict(k) for k in self.kills], "clean": self.clean,
                "verification": v.as_json() if v else None}


def run_settings(base: Settings, tag: str) -> Settings:
    """The run's own topics, groups and home under the configured ones."""
    return base.model_copy(update={
        "app_id": f"{base.app_id}-chaos-{tag}",
        "topic_transactions": f"{base.topic_transactions}.chaos-{tag}",
        "topic_alerts": f"{base.topic_alerts}.chaos-{tag}",
        "topic_dlq": f"{base.topic_dlq}.chaos-{tag}",
        "notifier_group": None,
        "home": base.home / "chaos" / tag,
        "web_port": 0,
    })


def _consumed(pipeline: Pipeline, worker: ServiceProcess) -> int:
    try:
        with urllib.request.urlopen(f"{pipeline.worker_url(worker)}/stats", timeout=1) as resp:
            return int(json.load(resp)["consumed"])
    except (OSError, ValueError, KeyError):
        return -1


def _wait_consuming(pipeline: Pipeline, worker: ServiceProcess, floor: int, timeout: float) -> int:
    """Until the worker's /stats shows it processed more than `floor` records (or timeout)."""
    deadline = time.monotonic() + timeout
    consumed = -1
    while time.monotonic() < deadline and worker.alive:
        consumed = _consumed(pipeline, worker)
        if consumed > floor:
            return consumed
        time.sleep(0.1)
    return consumed


class _Follower:
    """Reads a topic from its current end (assigned, no group join, so it starts at once)."""

    def __init__(self, settings: Settings, topic: str) -> None:
        self.topic = topic
        self.consumer = Consumer(settings.kafka_client_config(**{
            "group.id": f"chaos-follower-{uuid.uuid4().hex[:8]}", "enable.auto.commit": False,
            "fetch.wait.max.ms": 5}))
        partitions = self.consumer.list_topics(topic, timeout=10).topics[topic].partitions
        ends = [TopicPartition(topic, p, self.consumer.get_watermark_offsets(TopicPartition(topic, p),
                                                                             timeout=10)[1])
                for p in partitions]
        self.consumer.assign(ends)

    def poll(self, timeout: float) -> Any:
        msg = self.consumer.poll(timeout)
        if msg is None or msg.error() is not None:
            return None
        return msg

    def close(self) -> None:
        self.consumer.close()


def _alert_on_topic(settings: Settings, crossing_tx: str) -> bool:
    """Is there an alert naming this crossing transaction on the alerts topic (read to its end)?"""
    consumer = Consumer(settings.kafka_client_config(**{"group.id": f"chaos-check-{uuid.uuid4().hex[:8]}",
                                                        "enable.auto.commit": False}))
    try:
        topic = settings.topic_alerts
        ends: dict[int, int] = {}
        for p in consumer.list_topics(topic, timeout=10).topics[topic].partitions:
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
            if high > low:
                ends[p] = high
        consumer.assign([TopicPartition(topic, p, 0) for p in ends])
        found = False
        deadline = time.monotonic() + 20
        while ends and time.monotonic() < deadline:
            msg = consumer.poll(1)
            if msg is None or msg.error() is not None:
                continue
            found = found or crossing_tx.encode() in (msg.value() or b"")
            partition, offset = msg.partition() or 0, msg.offset() or 0
            if offset >= ends[partition] - 1:
                del ends[partition]
        return found
    finally:
        consumer.close()


def _kill_on_crossing(settings: Settings, worker: ServiceProcess, timeout: float) -> tuple[str | None, bool]:
    """Follow the `days` changelog; kill the worker the moment a day with a crossing is stored."""
    follower = _Follower(settings, f"{settings.app_id}-days-changelog")
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and worker.alive:
            msg = follower.poll(0.05)
            if msg is None or not msg.value():
                continue
            value = orjson.loads(msg.value())
            # the crossing was counted in this very write: it is the day's last counted id
            if (isinstance(value, dict) and value.get("x") and value["i"][-1] == value["x"]
                    and day_count(value) == len(value["i"])):
                worker.kill9()
                return str(value["x"]), True
        return None, False
    finally:
        follower.close()


def run_chaos(base: Settings, kills: int, seed: int, scenario: str, rate: float, out: Path | None,
              report: Callable[[str], None] = lambda _m: None, drain_timeout: float = 240.0) -> ChaosResult:
    """Case 1 of the fault suite on demand; returns what happened (see the module docstring)."""
    tag = uuid.uuid4().hex[:8]
    s = run_settings(base, tag)
    ensure_topics(s)
    rng = random.Random(seed)
    result = ChaosResult(settings_tag=tag)
    out = out or s.home / "run"
    started = time.monotonic()
    pipeline = Pipeline(s)
    pipeline.start()
    worker = pipeline.workers[0]
    sim_log = s.home / "logs" / "simulate.log"
    sim_log.parent.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, **s.as_env(), "COLUMNS": "120"}
    with open(sim_log, "wb") as log:
        sim = subprocess.Popen([sys.executable, "-m", "paylimit", "simulate", "--scenario", scenario, "--seed",
                                str(seed), "--out", str(out), "--rate", str(rate)],
                               stdout=log, stderr=subprocess.STDOUT, env=env)
    report(f"run {tag}: scenario {scenario}, seed {seed}, {rate:g} events/s; worker pid {worker.pid}")
    try:
        consumed = 0
        for number in range(1, kills + 1):
            consumed = max(0, _wait_consuming(pipeline, worker, 0, timeout=60))
            pid = worker.pid or -1
            if number == 1:
                crossing, killed = _kill_on_crossing(s, worker, timeout=60)
                kill = Kill(number, "crossing", pid, time.monotonic() - started, consumed, False,
                            crossing_transaction_id=crossing)
                if not killed:
                    worker.kill9()
            else:
                time.sleep(rng.uniform(0.2, 2.5))
                consumed = _consumed(pipeline, worker)
                worker.kill9()
                kill = Kill(number, "random", pid, time.monotonic() - started, consumed, False)
            kill.dead = not worker.alive
            if kill.crossing_transaction_id:
                kill.alert_already_sent = _alert_on_topic(s, kill.crossing_transaction_id)
            worker.restart()
            kill.restarted_pid = worker.pid
            result.kills.append(kill)
            extra = (f", crossing {kill.crossing_transaction_id}, alert already sent: {kill.alert_already_sent}"
                     if kill.kind == "crossing" else "")
            report(f"kill {number} ({kill.kind}) at {kill.at:.1f}s: pid {pid} after {consumed} records -> "
                   f"{'dead' if kill.dead else 'STILL ALIVE'}{extra}; restarted as pid {worker.pid}")
        result.simulate_exit = sim.wait(timeout=600)
        report(f"simulate finished (exit {result.simulate_exit}); waiting for the pipeline to drain")
        pipeline.wait_drained(timeout=drain_timeout)
        from notifier.record import read_delivered

        if result.simulate_exit == 0:
            result.verification = verify(read_expected(out / "expected_alerts.jsonl"), read_delivered(s))
    finally:
        if sim.poll() is None:
            sim.kill()
            sim.wait()
        pipeline.stop()
        result.seconds = time.monotonic() - started
    return result


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
    result = run_chaos(base, kills, seed, scenario, rate, out,
                       report=(lambda _m: None) if as_json else (lambda m: console.print(m, highlight=False)))
    if as_json:
        print(json.dumps(result.as_json()))
    else:
        console.print(render(result))
    raise typer.Exit(0 if result.clean else 1)

