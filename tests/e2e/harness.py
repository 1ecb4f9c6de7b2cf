"""Running paylimit's own commands end to end against the real services, for the e2e and fault tests."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, Producer, TopicPartition

from paylimit.contracts import DeadLetter
from paylimit.settings import Settings


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
    producer = Producer(settings.kafka_client_config(**{"acks": "all"}))
    for partition, key, value in records:
        producer.produce(topic, value, key, partition=partition)
    assert producer.flush(30) == 0


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
