"""Smoke test: a minimal faust-streaming worker counts records through the real broker, in a Table
whose changelog lands on the broker, and stops cleanly on SIGTERM."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from confluent_kafka import Consumer, Producer

from tests.test_smoke.kafka_helpers import create_topic, read_all, text, unique

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
N = 200


def test_faust_app_counts_through_the_broker(kafka_bootstrap: str, tmp_path: Path) -> None:
    app_id, source, sink = unique("faust"), unique("faust-in"), unique("faust-out")
    create_topic(kafka_bootstrap, source)
    create_topic(kafka_bootstrap, sink)
    errors: list[str] = []
    producer = Producer({"bootstrap.servers": kafka_bootstrap, "enable.idempotence": True, "acks": "all"})
    for i in range(N):
        producer.produce(source, key="user-1", value=str(i),
                         on_delivery=lambda err, _m: errors.append(err.str()) if err else None)
        producer.poll(0)
    assert producer.flush(10) == 0 and errors == []

    log = (tmp_path / "faust.log").open("wb")
    worker = subprocess.Popen(
        [sys.executable, "-m", "tests.test_smoke.faust_counter", kafka_bootstrap, app_id, source, sink,
         str(tmp_path / "faust-data")],
        cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
    )
    try:
        last = wait_for_count(kafka_bootstrap, sink, N, worker, timeout=60)
        assert last == N
    finally:
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(timeout=30)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()
            pytest.fail("faust worker did not stop within 30 s of SIGTERM")
        log.close()
    assert worker.returncode in (0, -signal.SIGTERM), (tmp_path / "faust.log").read_text()[-2000:]

    # the table's state went through the broker: its changelog topic holds the final count
    changelog = [m for m in read_all(kafka_bootstrap, f"{app_id}-counts-changelog") if m.key()]
    assert changelog, "no changelog records"
    assert json.loads(text(changelog[-1].key())) == "user-1"
    assert json.loads(text(changelog[-1].value())) == N


def wait_for_count(bootstrap: str, topic: str, n: int, worker: subprocess.Popen[bytes], timeout: float) -> int:
    """The counts the agent sends, until one says n; fails early if the worker died."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": unique("watch"),
                         "auto.offset.reset": "earliest", "enable.auto.commit": False})
    consumer.subscribe([topic])
    last = 0
    try:
        deadline = time.monotonic() + timeout
        while last < n and time.monotonic() < deadline:
            assert worker.poll() is None, f"faust worker exited with {worker.returncode}"
            for msg in consumer.consume(500, timeout=0.5):
                assert not msg.error(), msg.error()
                count = int(text(msg.value()))
                assert count == last + 1, f"count went {last} -> {count}"
                last = count
    finally:
        consumer.close()
    return last
