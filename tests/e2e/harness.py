"""Running paylimit's own commands end to end against the real services, for the e2e and fault tests."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timezone
from pathlib import Path
from typing import Any
from urllib.error import HTTPError, URLError
from urllib.parse import quote

from confluent_kafka import Consumer, TopicPartition

from paylimit.contracts import DeadLetter, SentRecord
from paylimit.kafka import ANY_PARTITION, produce_all
from paylimit.settings import Settings
from producer_sim.oracle import expected_outcome


def paylimit(settings: Settings, *args: str, timeout: float = 300, check: bool = True) -> subprocess.CompletedProcess:
    """Run `paylimit ARGS` as a user would, with these settings in the environment."""
    env = {**os.environ, **settings.as_env(), "COLUMNS": "200"}
    proc = subprocess.run([sys.executable, "-m", "paylimit", *args], env=env, capture_output=True, text=True,
                          timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"paylimit {' '.join(args)} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}")
    return proc


def simulate(settings: Settings, out: Path, scenario: str, seed: int = 7, *extra: str) -> Path:
    paylimit(settings, "simulate", "--scenario", scenario, "--seed", str(seed), "--out", str(out), *extra)
    return out


def verify(settings: Settings, expected: Path) -> dict[str, Any]:
    proc = paylimit(settings, "verify", "--expected", str(expected), "--json", check=False)
    result = json.loads(proc.stdout)
    result["exit_code"] = proc.returncode
    return result


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def produce(settings: Settings, topic: str, records: list[tuple[int, bytes | None, bytes | None]]) -> None:
    """(partition, key, value) records onto `topic`, acknowledged when this returns."""
    produce_all(settings, topic, records)


def produce_transactions(settings: Settings, counts: dict[str, int], status: str = "succeeded") -> None:
    """`counts[user]` transactions for each user, keyed by user_id, as the simulator sends them."""
    produce_all(settings, settings.topic_transactions, [
        (ANY_PARTITION, user.encode(), json.dumps({
            "transaction_id": uuid.uuid4().hex, "user_id": user, "amount": "249.00", "currency": "INR",
            "status": status, "occurred_at": datetime.now(timezone.utc).isoformat(), "category": "food"}).encode())
        for user, n in counts.items() for _ in range(n)], timeout=15)


def watermarks(consumer: Consumer, topic: str) -> dict[int, tuple[int, int]]:
    """Partition -> (low, high) watermark offsets of every partition of `topic`."""
    partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
    return {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10) for p in partitions}


def dead_letters(settings: Settings) -> list[DeadLetter]:
    """Every record on the dead-letter topic, read from the start to its end."""
    consumer = Consumer(settings.kafka_client_config(**{"group.id": f"{settings.app_id}-dlq-reader",
                                                        "enable.auto.commit": False}))
    try:
        topic = settings.topic_dlq
        out: list[DeadLetter] = []
        ends = {p: high for p, (low, high) in watermarks(consumer, topic).items() if high > low}
        consumer.assign([TopicPartition(topic, p, 0) for p in ends])
        while ends:
            msg = consumer.poll(10)
            assert msg is not None, f"timed out reading {topic}"
            assert not msg.error(), msg.error()
            out.append(DeadLetter.model_validate_json(msg.value()))
            if msg.offset() >= ends[msg.partition()] - 1:
                del ends[msg.partition()]
        return out
    finally:
        consumer.close()


def original(letter: DeadLetter) -> bytes:
    return base64.b64decode(letter.original)


def expected_usage(settings: Settings, run: Path) -> dict[tuple[str, str], int]:
    """(user, local date) -> the count the oracle expects, for every day of a valid record of a
    `paylimit simulate` run (its events.jsonl; counts do not depend on the limits)."""
    sent = [SentRecord.model_validate_json(line) for line in (run / "events.jsonl").read_text().splitlines() if line]
    usage = expected_outcome(sent, settings, datetime.now(UTC)).usage
    return {(user, day.isoformat()): count for (user, day), count in usage.items()}


@dataclass(frozen=True)
class WrongUsage:
    worker: str
    user_id: str
    local_date: str
    expected: int
    got: int | str  # the count answered, or what came instead of an answer


def ask_usage(worker: str, user: str, day: str | None = None, deadline: float = 0.0) -> tuple[int, Any]:
    """(HTTP status, body) of a worker's usage view for `user` (today, or on `day`), asked again
    until it answers 200 or time.monotonic() passes `deadline` (a 503 while partitions move)."""
    url = f"{worker.rstrip('/')}/users/{quote(user, safe='')}/usage" + (f"?date={day}" if day else "")
    while True:
        try:
            with urllib.request.urlopen(url, timeout=10) as resp:
                return resp.status, json.load(resp)
        except HTTPError as exc:
            status, body = exc.code, exc.read().decode(errors="replace")
        except (URLError, OSError, ValueError) as exc:
            status, body = 0, repr(exc)
        if time.monotonic() > deadline:
            return status, body
        time.sleep(0.2)


def wrong_usage_answers(worker_urls: Sequence[str], expected: Mapping[tuple[str, str], int],
                        timeout: float = 120.0) -> list[WrongUsage]:
    """Ask every worker about every (user, date) of `expected`, and return the answers that are
    wrong: another count, or no answer (an error status) by `timeout` (a 503 while partitions
    move is asked again until then)."""
    deadline = time.monotonic() + timeout
    wrong: list[WrongUsage] = []
    for worker in worker_urls:
        for (user, day), count in sorted(expected.items()):
            status, body = ask_usage(worker, user, day, deadline)
            got = body["count"] if status == 200 and body.get("local_date") == day else f"HTTP {status}: {body}"
            if got != count:
                wrong.append(WrongUsage(worker, user, day, count, got))
    return wrong
