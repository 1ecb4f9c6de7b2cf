"""The Notifier service on the real Kafka and Redis, driven from a thread."""

from __future__ import annotations

import threading
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Callable, Iterator

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from pydantic import SecretStr

from notifier.delivery import Delivery, alert_key
from notifier.log import read_notifications
from notifier.service import Notifier
from paylimit.contracts import LimitAlert, encode
from paylimit.notification_record import redis_client
from paylimit.settings import Settings
from tests.test_notifier.factory import make_alert
from tests.test_notifier.test_delivery import stream_ids

pytestmark = pytest.mark.integration


def produce(settings: Settings, values: list[tuple[str, bytes]]) -> None:
    with_errors: list[str] = []
    producer = Producer(settings.kafka_client_config(**{"enable.idempotence": True, "acks": "all"}))
    for key, value in values:
        producer.produce(settings.topic_alerts, key=key.encode(), value=value,
                         on_delivery=lambda err, msg: with_errors.append(str(err)) if err else None)
        producer.poll(0)
    assert producer.flush(30) == 0 and not with_errors


def produce_alerts(settings: Settings, alerts: list[LimitAlert]) -> None:
    produce(settings, [(a.user_id, encode(a)) for a in alerts])


def wait_for(predicate: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


class Running:
    def __init__(self, notifier: Notifier) -> None:
        self.notifier = notifier
        self.thread = threading.Thread(target=notifier.run, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.notifier.stop()
        self.thread.join(timeout=30)
        assert not self.thread.is_alive()


@pytest.fixture
def run_notifier() -> Iterator[Callable[[Settings], Notifier]]:
    running: list[Running] = []

    def start(settings: Settings) -> Notifier:
        running.append(Running(Notifier(settings, poll_timeout=0.2)))
        return running[-1].notifier

    yield start
    for r in running:
        r.stop()


def alerts_for(n: int) -> list[LimitAlert]:
    return [make_alert(f"user-{i}", day=date(2025, 3, 10) + timedelta(days=i % 3)) for i in range(n)]


def committed(settings: Settings, group: str) -> int:
    c = Consumer(settings.kafka_client_config(**{"group.id": group}))
    try:
        parts = c.list_topics(settings.topic_alerts, timeout=10).topics[settings.topic_alerts].partitions
        return sum(max(tp.offset, 0) for tp in c.committed([TopicPartition(settings.topic_alerts, p) for p in parts],
                                                              timeout=10))
    finally:
        c.close()


def test_delivers_each_alert_once_and_drops_repeats(make_settings: Callable[..., Settings],
                                                    run_notifier: Callable[[Settings], Notifier]) -> None:
    s = make_settings()
    alerts = alerts_for(12)
    produce_alerts(s, alerts)
    notifier = run_notifier(s)
    wait_for(lambda: notifier.stats.delivered == 12)
    ids = sorted(a.alert_id for a in alerts)
    assert sorted(n.alert_id for n in read_notifications(s.notifications_log)) == ids
    assert sorted(stream_ids(s)) == ids

    # the stream app re-sends on replay: the same alerts again deliver nothing new
    produce_alerts(s, alerts)
    wait_for(lambda: notifier.stats.duplicates_dropped == 12)
    assert notifier.stats.delivered == 12 and notifier.stats.invalid == 0
    assert len(read_notifications(s.notifications_log)) == 12 and len(stream_ids(s)) == 12
    wait_for(lambda: committed(s, s.notifier_group_id) == 24, timeout=30)

    # a second notifier reading the whole topic from scratch (a new group) delivers nothing new
    again = run_notifier(s.model_copy(update={"notifier_group": f"{s.app_id}-second"}))
    wait_for(lambda: again.stats.duplicates_dropped == 24)
    assert again.stats.delivered == 0
    assert len(read_notifications(s.notifications_log)) == 12 and len(stream_ids(s)) == 12


def test_invalid_record_is_skipped_and_the_next_alert_delivered(
        make_settings: Callable[..., Settings], run_notifier: Callable[[Settings], Notifier]) -> None:
    s = make_settings(partitions=1)
    good = make_alert("after-the-bad-one")
    produce(s, [("x", b"not json"), ("x", b'{"alert_id": "no-other-fields"}'), (good.user_id, encode(good))])
    notifier = run_notifier(s)
    wait_for(lambda: notifier.stats.delivered == 1)
    assert notifier.stats.invalid == 2
    assert [n.alert_id for n in read_notifications(s.notifications_log)] == [good.alert_id]
    wait_for(lambda: committed(s, s.notifier_group_id) == 3, timeout=30)


def test_alert_reserved_by_a_dead_notifier_is_delivered_after_its_lease(
        make_settings: Callable[..., Settings], run_notifier: Callable[[Settings], Notifier]) -> None:
    s = make_settings()
    alert = make_alert()
    dead = Delivery(s, redis_client(s))
    key = alert_key(s, alert.alert_id)
    assert redis_client(s).set(key, dead.token, nx=True, px=dead.lease_ms)  # the default lease: minutes
    produce_alerts(s, [alert])
    notifier = run_notifier(s)
    deadline = time.monotonic() + 3  # the notifier tries again every BACKOFF_CAP (2 s) at most
    while time.monotonic() < deadline:
        assert notifier.stats.delivered == 0, "delivered while another notifier's lease held it"
        time.sleep(0.1)
    redis_client(s).pexpire(key, 1)  # the dead notifier's lease runs out
    wait_for(lambda: notifier.stats.delivered == 1)
    assert [n.alert_id for n in read_notifications(s.notifications_log)] == [alert.alert_id]


def test_redis_down_waits_and_never_skips(make_settings: Callable[..., Settings],
                                          run_notifier: Callable[[Settings], Notifier]) -> None:
    from paylimit.runtime.processes import free_port

    s = make_settings()
    alert = make_alert()
    produce_alerts(s, [alert])
    down = s.model_copy(update={"redis_url": SecretStr(f"redis://127.0.0.1:{free_port()}/0")})
    broken = Notifier(down, poll_timeout=0.2)
    thread = threading.Thread(target=broken.run, daemon=True)
    thread.start()
    wait_for(lambda: broken.stats.retries >= 3, timeout=30)
    broken.stop()
    thread.join(timeout=30)
    assert not thread.is_alive()
    assert broken.stats.delivered == 0 and read_notifications(s.notifications_log) == []
    assert committed(s, s.notifier_group_id) == 0  # not skipped: its offset was never stored

    notifier = run_notifier(s)  # Redis back: the same group picks the alert up again
    wait_for(lambda: notifier.stats.delivered == 1)
    assert [n.alert_id for n in read_notifications(s.notifications_log)] == [alert.alert_id]


def test_heartbeat_file_is_touched_while_the_loop_runs(make_settings: Callable[..., Settings],
                                                       run_notifier: Callable[[Settings], Notifier],
                                                       tmp_path: Path) -> None:
    # docker-compose.yml's health check of the notifier reads this file's age
    beat = tmp_path / "notifier.heartbeat"
    s = make_settings(notifier_heartbeat=beat)
    run_notifier(s)
    wait_for(beat.exists)
    first = beat.stat().st_mtime_ns
    wait_for(lambda: beat.stat().st_mtime_ns > first)  # touched again, not just once at start
