"""Delivery on the real Redis: reserve -> deliver -> confirm, repeats dropped, both crash windows."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Callable

import pytest

from notifier.delivery import DELIVERED, Delivery, Outcome, alert_key, redis_client, stream_key
from notifier.log import append_notification, read_notifications
from paylimit.settings import Settings
from tests.test_notifier.factory import make_alert, notification_of

pytestmark = pytest.mark.integration


def stream_ids(settings: Settings) -> list[str]:
    from paylimit.contracts import Notification

    entries: list[tuple[str, dict[str, str]]] = redis_client(settings).xrange(stream_key(settings))  # type: ignore[assignment]
    return [Notification.model_validate_json(fields["notification"]).alert_id for _, fields in entries]


def test_redis_runs_with_aof(make_settings: Callable[..., Settings]) -> None:
    assert redis_client(make_settings()).config_get("appendonly")["appendonly"] == "yes"


def test_deliver_once_then_duplicate(make_settings: Callable[..., Settings]) -> None:
    s = make_settings()
    d = Delivery(s, redis_client(s))
    alert = make_alert()
    assert d.deliver(alert).outcome is Outcome.DELIVERED
    assert d.deliver(alert).outcome is Outcome.DUPLICATE
    assert Delivery(s, redis_client(s)).deliver(alert).outcome is Outcome.DUPLICATE
    [n] = read_notifications(s.notifications_log)
    assert n.alert_id == alert.alert_id and n.model_dump(exclude={"delivered_at"}) == alert.model_dump()
    assert stream_ids(s) == [alert.alert_id]
    r = redis_client(s)
    key = alert_key(s, alert.alert_id)
    assert key.startswith(f"{s.app_id}:")
    assert r.get(key) == DELIVERED and r.ttl(key) == -1  # no expiry


def test_crash_after_append_before_confirm_is_confirmed_without_second_append(
        make_settings: Callable[..., Settings]) -> None:
    s = make_settings()
    alert = make_alert()
    r = redis_client(s)
    # what a notifier killed between its log append and its confirm leaves behind
    logged = notification_of(alert)
    append_notification(s.notifications_log, logged)
    r.set(alert_key(s, alert.alert_id), "dead-token", px=300)
    d = Delivery(s, r)
    busy = d.deliver(alert)
    assert busy.outcome is Outcome.BUSY and 0 < busy.retry_after <= 0.3
    time.sleep(0.4)  # the stale reservation's lease runs out
    assert d.deliver(alert).outcome is Outcome.RECOVERED
    assert read_notifications(s.notifications_log) == [logged]
    assert stream_ids(s) == [alert.alert_id]
    assert r.get(alert_key(s, alert.alert_id)) == DELIVERED
    assert d.deliver(alert).outcome is Outcome.DUPLICATE


def test_a_late_confirm_after_a_takeover_adds_nothing(make_settings: Callable[..., Settings]) -> None:
    """A notifier that appended, then stalled past its lease: the one that took over confirmed
    first; the late confirm finds `delivered` and leaves the stream alone."""
    s = make_settings(notifier_lease=timedelta(milliseconds=200))
    alert = make_alert()
    r = redis_client(s)
    slow = Delivery(s, r)
    assert r.set(alert_key(s, alert.alert_id), slow.token, nx=True, px=slow.lease_ms)
    logged = notification_of(alert)
    append_notification(s.notifications_log, logged)
    time.sleep(0.3)  # stalled past its lease
    assert Delivery(s, r).deliver(alert).outcome is Outcome.RECOVERED
    slow._confirm(alert_key(s, alert.alert_id), logged)
    assert stream_ids(s) == [alert.alert_id]
    assert read_notifications(s.notifications_log) == [logged]


def test_crash_after_reserve_is_delivered_when_the_lease_expires(make_settings: Callable[..., Settings]) -> None:
    s = make_settings(notifier_lease=timedelta(milliseconds=500))
    alert = make_alert()
    r = redis_client(s)
    dead = Delivery(s, r)
    assert r.set(alert_key(s, alert.alert_id), dead.token, nx=True, px=dead.lease_ms)  # reserved, then killed
    d = Delivery(s, r)
    assert d.deliver(alert).outcome is Outcome.BUSY
    assert read_notifications(s.notifications_log) == []
    time.sleep(0.6)
    assert d.deliver(alert).outcome is Outcome.DELIVERED
    assert [n.alert_id for n in read_notifications(s.notifications_log)] == [alert.alert_id]


def test_failed_webhook_gives_the_reservation_back_and_marks_nothing(make_settings: Callable[..., Settings]) -> None:
    from notifier.webhook import WebhookFailure
    from paylimit.runtime.processes import free_port

    s = make_settings(webhook_url=f"http://127.0.0.1:{free_port()}/hook")
    alert = make_alert()
    with pytest.raises(WebhookFailure):
        Delivery(s, redis_client(s)).deliver(alert)
    assert redis_client(s).get(alert_key(s, alert.alert_id)) is None
    assert read_notifications(s.notifications_log) == []
