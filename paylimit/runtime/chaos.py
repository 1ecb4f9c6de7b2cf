"""The run behind `paylimit chaos` (`paylimit.cli.chaos`): kill -9 the stream worker N times while a
scenario streams in, then verify.

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
Clean only when every kill happened and the verification is clean. What a stored day looks like
is the worker's (`stream_app.state`): the command hands it in (`CrossingCounted`).
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
from typing import Any, Callable, Optional

from confluent_kafka import Consumer, TopicPartition

from paylimit.kafka import ensure_topics, read_to_end
from paylimit.notification_record import read_delivered
from paylimit.runtime.pipeline import Pipeline, ServiceProcess
from paylimit.settings import Settings
from paylimit.verify import Verification, read_expected, verify

#: a `days` changelog value -> the crossing transaction it stored just now (its day's last counted id), or None
CrossingCounted = Callable[[bytes], Optional[str]]


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
    alerts, _ = read_to_end(settings, settings.topic_alerts, None, f"chaos-check-{uuid.uuid4().hex[:8]}", timeout=20)
    return any(crossing_tx.encode() in (value or b"") for _, _, value in alerts)


def _kill_on_crossing(settings: Settings, worker: ServiceProcess, crossing_counted: CrossingCounted,
                      timeout: float) -> tuple[str | None, bool]:
    """Follow the `days` changelog; kill the worker the moment a day with a crossing is stored."""
    follower = _Follower(settings, f"{settings.app_id}-days-changelog")
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and worker.alive:
            msg = follower.poll(0.05)
            crossing = crossing_counted(msg.value()) if msg is not None and msg.value() else None
            if crossing is not None:
                worker.kill9()
                return crossing, True
        return None, False
    finally:
        follower.close()


def run_chaos(base: Settings, crossing_counted: CrossingCounted, kills: int, seed: int, scenario: str, rate: float,
              out: Path | None, report: Callable[[str], None] = lambda _m: None,
              drain_timeout: float = 240.0) -> ChaosResult:
    """Case 1 of the fault suite on demand; returns what happened (see the module docstring)."""
    tag = uuid.uuid4().hex[:8]
    s = base.isolated(f"chaos-{tag}", base.home / "chaos" / tag)
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
                crossing, killed = _kill_on_crossing(s, worker, crossing_counted, timeout=60)
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
        if result.simulate_exit == 0:
            result.verification = verify(read_expected(out / "expected_alerts.jsonl"), read_delivered(s))
    finally:
        if sim.poll() is None:
            sim.kill()
            sim.wait()
        pipeline.stop()
        result.seconds = time.monotonic() - started
    return result
