"""Bounded growth and writes that can fail, on the real broker, Redis and a real full disk
(README: Operating paylimit, Bounds)."""

from __future__ import annotations

import logging
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Callable

import pytest
import redis
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient, ConfigResource, ResourceType

from notifier.delivery import Delivery, Outcome, alert_key
from notifier.log import read_notifications
from paylimit.notification_record import notifier_counts, notifier_name, record_key, redis_client
from notifier.service import Notifier
from paylimit.settings import Settings
from tests.test_faults.helpers import wait_for
from tests.test_notifier.factory import make_alert
from tests.test_notifier.test_delivery import expire_now, stream_ids
from tests.test_notifier.test_service import produce_alerts, run_notifier  # noqa: F401 (a fixture)

pytestmark = pytest.mark.integration


def test_every_topic_paylimit_creates_carries_its_retention(make_settings: Callable[..., Settings]) -> None:
    from stream_app.app import build_app, changelog_topics

    s = make_settings(topic_retention=timedelta(days=3), topic_segment=timedelta(hours=6),
                      topic_notifications_dlq=f"ndlq-{uuid.uuid4().hex[:10]}")
    admin = AdminClient(s.kafka_client_config())
    resources = [ConfigResource(ResourceType.TOPIC, t) for t in
                 (s.topic_transactions, s.topic_alerts, s.topic_dlq, s.topic_notifications_dlq, s.topic_limits)]
    configs = {r.name: {k: v.value for k, v in f.result().items()}
               for r, f in admin.describe_configs(resources).items()}
    for topic in resources[:4]:
        c = configs[topic.name]
        assert (c["retention.ms"], c["segment.ms"], c["cleanup.policy"], c["message.timestamp.type"]) == (
            str(3 * 86_400_000), str(6 * 3_600_000), "delete", "LogAppendTime")
    assert (configs[s.topic_limits]["cleanup.policy"], configs[s.topic_limits]["retention.ms"]) == ("compact", "-1")
    [days] = [t for t in changelog_topics(build_app(s.model_copy(update={"web_port": 6066})))
              if t.topic == f"{s.app_id}-days-changelog"]
    assert days.config["retention.ms"] == "-1" and days.config["cleanup.policy"] == "compact"


def test_the_delivered_horizon_must_outlast_any_replay() -> None:
    from pydantic import ValidationError

    from paylimit.settings import get_settings

    assert get_settings(topic_retention="P7D", topic_segment="P1D", delivered_ttl="P17D").delivered_ttl.days == 17
    with pytest.raises(ValidationError, match="PAYLIMIT_TOPIC_RETENTION"):
        get_settings(topic_retention="P7D", topic_segment="P1D", delivered_ttl="P16D")


def test_the_record_keeps_its_latest_entries(make_settings: Callable[..., Settings]) -> None:
    s = make_settings(record_max_entries=3)
    d = Delivery(s, redis_client(s))
    alerts = [make_alert(f"user-{i}") for i in range(5)]
    assert all(d.deliver(a).outcome is Outcome.DELIVERED for a in alerts)
    assert redis_client(s).xlen(record_key(s)) == 3
    assert stream_ids(s) == [a.alert_id for a in alerts[2:]]
    assert notifier_counts(redis_client(s), s) == {notifier_name(s): 5}  # the counts are not trimmed
    assert [n.alert_id for n in read_notifications(s.notifications_log)] == [a.alert_id for a in alerts]  # the ledger


def test_a_line_whose_record_did_not_happen_is_taken_back_at_the_next_start(
        make_settings: Callable[..., Settings]) -> None:
    """Appended, then the record failed and the notifier stopped (as a kill after the append would
    leave it): the next start takes the line back; a recorded last line stays."""
    s = make_settings()
    r = redis_client(s)
    first, second = make_alert("first"), make_alert("second")
    r.set(record_key(s), "not a stream")  # the record script fails at its XADD
    with pytest.raises(redis.ResponseError):
        Delivery(s, r).deliver(first)
    assert [n.alert_id for n in read_notifications(s.notifications_log)] == [first.alert_id]  # pending
    r.delete(record_key(s))
    restarted = Delivery(s, r)
    assert restarted.deliver(second).outcome is Outcome.DELIVERED
    assert [n.alert_id for n in read_notifications(s.notifications_log)] == [second.alert_id]
    expire_now(r, alert_key(s, first.alert_id))  # the first attempt's reservation
    assert restarted.deliver(first).outcome is Outcome.DELIVERED
    Delivery(s, r).settle_log()  # another start: the last line is recorded, by this notifier: kept
    assert [n.alert_id for n in read_notifications(s.notifications_log)] == [second.alert_id, first.alert_id]
    assert stream_ids(s) == [second.alert_id, first.alert_id]


def test_a_notifier_on_a_full_disk_confirms_nothing_and_delivers_once_there_is_room(
        make_settings: Callable[..., Settings], run_notifier: Callable[[Settings], Notifier],  # noqa: F811
        small_disk: Path, caplog: pytest.LogCaptureFixture) -> None:
    s = make_settings(home=small_disk / "home")
    alert = make_alert("big", limit=400)  # its line (about 12 KiB) does not fit: a short write
    produce_alerts(s, [alert])
    with caplog.at_level(logging.WARNING, logger="paylimit.notifier"):
        notifier = run_notifier(s)
        wait_for(lambda: notifier.stats.retries >= 3, 60, "failed attempts")
        assert notifier.stats.delivered == 0 and stream_ids(s) == []
        assert s.notifications_log.stat().st_size == 0  # no partial line left behind
        failed = [r.getMessage() for r in caplog.records if "short write" in r.getMessage()]
        assert failed and all("\n" not in m and f"alert {alert.alert_id}" in m for m in failed)
        (small_disk / "filler").unlink()
        wait_for(lambda: notifier.stats.delivered == 1, 60, "the delivery")
    assert stream_ids(s) == [alert.alert_id] and read_notifications(s.notifications_log)[0].alert_id == alert.alert_id


def test_a_notifier_behind_the_topics_retention_says_so_and_counts_it(
        make_settings: Callable[..., Settings], run_notifier: Callable[[Settings], Notifier],  # noqa: F811
        caplog: pytest.LogCaptureFixture) -> None:
    """The group committed offset 0, then the broker deleted three alerts (1 s retention) before
    a notifier read them: the notifier logs an error naming them and counts them."""
    s = make_settings(partitions=1, topic_retention=timedelta(seconds=1), topic_segment=timedelta(milliseconds=100))
    tp = TopicPartition(s.topic_alerts, 0, 0)
    group = Consumer(s.kafka_client_config(**{"group.id": s.notifier_group_id}))
    group.commit(offsets=[tp], asynchronous=False)
    produce_alerts(s, [make_alert(f"user-{i}") for i in range(3)])
    wait_for(lambda: group.get_watermark_offsets(tp, timeout=10, cached=False)[0] == 3, 120, "retention to delete them")
    group.close()
    with caplog.at_level(logging.ERROR, logger="paylimit.notifier"):
        notifier = run_notifier(s)
        wait_for(lambda: notifier.stats.lost_to_retention > 0, 60, "the report")
    assert notifier.stats.lost_to_retention == 3
    [report] = [r.getMessage() for r in caplog.records if "retention" in r.getMessage()]
    assert f"behind the retention of {s.topic_alerts}[0]: 3 alert records (offsets 0 to 2)" in report
