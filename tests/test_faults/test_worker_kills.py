"""Case 1: kill -9 of the stream worker at seeded random moments, and right after a crossing was stored.

`paylimit chaos` does the run (the command a user runs to watch the system heal): kill 1 follows the
`days` changelog and fires the moment a day value whose last counted id is its crossing transaction
is acknowledged there (count stored); the JSON says whether that alert had reached the alerts
topic. Whether the kill lands before the alert's send is a race, so the window is also covered by
construction: `test_counts_stored_alerts_not_sent_are_replayed` gives a fresh worker exactly the
state such a kill leaves behind (every count, crossings included, in the changelog; no alert sent;
no offset committed) and asserts every alert is still delivered exactly once.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from paylimit.kafka import LagReader
from paylimit.runtime.pipeline import Pipeline
from paylimit.settings import Settings
from stream_app.batch import PROGRESS
from tests.e2e.harness import paylimit, simulate, watermarks
from tests.test_faults.helpers import assert_exact, wait_for

pytestmark = [pytest.mark.faults, pytest.mark.integration]


def test_chaos_kills_the_worker_five_times_and_verifies_exactly(make_settings: Callable[..., Settings]) -> None:
    settings = make_settings()
    proc = paylimit(settings, "chaos", "--kills", "5", "--seed", "3", "--rate", "25", "--json", check=False,
                    timeout=420)
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    kills = report["kills"]
    assert len(kills) >= 5
    assert all(k["dead"] for k in kills), kills  # every kill really killed the process
    assert all(k["restarted_pid"] and k["restarted_pid"] != k["pid"] for k in kills), kills
    assert kills[0]["kind"] == "crossing" and kills[0]["crossing_transaction_id"], kills[0]
    assert all(k["consumed_before"] > 0 for k in kills), kills  # killed while processing, not while booting
    v = report["verification"]
    assert v is not None, report
    assert (v["missing"], v["extra"], v["duplicate"], v["wrong_field"]) == (0, 0, 0, 0), v
    assert report["clean"] and proc.returncode == 0, report


def _copy_topic(source: Settings, topic_from: str, topic_to: str, skip_key: bytes = b"\0") -> int:
    """Every record of `topic_from` (but those whose key contains `skip_key`) into the same partition
    of `topic_to`, in offset order."""
    consumer = Consumer(source.kafka_client_config(**{"group.id": f"{source.app_id}-copier",
                                                      "enable.auto.commit": False}))
    producer = Producer(source.kafka_client_config(**{"enable.idempotence": True, "acks": "all"}))
    copied = 0
    try:
        for p, (low, high) in watermarks(consumer, topic_from).items():
            if high <= low:
                continue
            consumer.assign([TopicPartition(topic_from, p, low)])
            while True:
                msg = consumer.poll(10)
                assert msg is not None, f"timed out reading {topic_from}[{p}]"
                if msg.error():
                    continue
                if skip_key not in (msg.key() or b""):
                    producer.produce(topic_to, key=msg.key(), value=msg.value(), partition=p)
                    producer.poll(0)
                    copied += 1
                if (msg.offset() or 0) >= high - 1:
                    break
        assert producer.flush(30) == 0
        return copied
    finally:
        consumer.close()


# rule_windows: every tier of the limit rules (24 h windows, whose state reads the days around) too
@pytest.mark.parametrize("scenario", ["heavy_users", "rule_windows"])
def test_counts_stored_alerts_not_sent_are_replayed(make_settings: Callable[..., Settings], tmp_path: Path,
                                                    scenario: str) -> None:
    first = make_settings()
    run = simulate(first, tmp_path / "run", scenario, 5)
    counting = Pipeline(first)
    counting.add_worker()  # counts everything; its alerts go to `first`'s topic, which nobody delivers
    lag = LagReader(first, first.app_id, first.topic_transactions)
    try:
        wait_for(lambda: lag.lag() == 0, 180, "the first worker")
    finally:
        lag.close()
        counting.stop()
    # The state a worker killed after storing the counts and before sending any alert would leave:
    # the changelog holds every day (crossings included) but not the progress markers (the next
    # offset per partition, which the worker writes only after the batch's alerts are acknowledged),
    # the alerts topic is empty, and the group has no committed offset, so the next worker replays
    # every record: each is a duplicate of its day, and each crossing one re-sends its alert.
    second = make_settings(topic_transactions=first.topic_transactions, topic_rules=first.topic_rules)
    changelog = f"{second.app_id}-days-changelog"
    admin = AdminClient(second.kafka_client_config())
    for fut in admin.create_topics([NewTopic(changelog, second.partitions, second.replication_factor,
                                             config={"cleanup.policy": "compact"})]).values():
        fut.result()
    assert _copy_topic(first, f"{first.app_id}-days-changelog", changelog, skip_key=PROGRESS.encode()) > 0
    pipeline = Pipeline(second)
    pipeline.start()
    try:
        pipeline.wait_drained(timeout=180)
        metrics = pipeline.worker_metrics()
        assert metrics["alerts_sent"] == 0 and metrics["alerts_resent"] > 0, metrics  # all from the replay path
        result = assert_exact(second, run)
        assert metrics["alerts_resent"] >= result["expected"] > 0
    finally:
        pipeline.stop()
