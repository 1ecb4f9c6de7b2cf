"""Case 2: kill -9 of the notifier at random moments, and between delivery (its record) and offset commit.

Three of the kills watch the notifier's export and fire the moment it grows (right after a record):
the alert is recorded and the notifier commits its stored offsets only every `commit_interval`, so
at that moment delivered alerts are not yet committed (the test reads the group's committed offsets
after the kill and asserts that this window was hit at least once). The replayed alerts must be
dropped, never recorded again; the other kills come at seeded random moments.
"""

from __future__ import annotations

import random
import time
from datetime import timedelta
from pathlib import Path
from typing import Callable

import pytest
from confluent_kafka import Consumer, TopicPartition

from notifier.log import read_notifications
from paylimit.notification_record import notifier_name, read_delivered, recorders, redis_client
from paylimit.runtime.pipeline import Pipeline
from paylimit.settings import Settings
from tests.test_faults.helpers import assert_exact, kill_and_check, simulate_in_background, wait_for

pytestmark = [pytest.mark.faults, pytest.mark.integration]


def _committed_alerts(settings: Settings) -> int:
    """Alert records the notifier group has committed (over all partitions)."""
    consumer = Consumer(settings.kafka_client_config(**{"group.id": settings.notifier_group_id,
                                                        "enable.auto.commit": False}))
    try:
        topic = settings.topic_alerts
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        committed = consumer.committed([TopicPartition(topic, p) for p in partitions], timeout=10)
        return sum(tp.offset for tp in committed if tp.offset >= 0)
    finally:
        consumer.close()


def _lines(settings: Settings) -> int:
    log = settings.notifications_log
    return len(log.read_bytes().splitlines()) if log.exists() else 0


def test_notifier_killed_between_delivery_and_commit(make_settings: Callable[..., Settings], tmp_path: Path) -> None:
    # a kill right after a reservation leaves it held until its lease ends: keep the lease short
    settings = make_settings(notifier_lease=timedelta(seconds=4))
    rng = random.Random(21)
    pipeline = Pipeline(settings)
    pipeline.start()
    background = simulate_in_background(settings, tmp_path / "run", "default", 21, "--rate", "70")
    notifier = pipeline.notifier
    assert notifier is not None
    window_hits, kills = 0, 0
    try:
        for number in range(5):
            if number < 3:
                # on delivery: the moment a new line is in the export
                seen = _lines(settings)
                wait_for(lambda: _lines(settings) > seen, 90, "a new notification", step=0.005)
                kill_and_check(notifier)
                delivered = len({n.alert_id for n in read_delivered(settings)})
                if delivered > _committed_alerts(settings):
                    window_hits += 1  # delivered, offset not committed: the replay must drop it
            else:
                time.sleep(rng.uniform(0.5, 3.0))
                kill_and_check(notifier)
            kills += 1
            notifier.restart()
        background.wait()
        pipeline.wait_drained(timeout=180)
        assert kills == 5 and notifier.restarts == 5
        assert window_hits >= 1, "no kill landed between a delivery and its offset commit"
        assert_exact(settings, background.out)
        # its log (killed 5 times, some kills between a line and its record): exactly what it recorded, in order
        by = recorders(redis_client(settings), settings)
        assert [n.alert_id for n in read_notifications(settings.notifications_log)] == by[notifier_name(settings)]
    finally:
        pipeline.stop()
