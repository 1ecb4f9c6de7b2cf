"""Delivery on the real Redis: reserve -> deliver -> fenced record, repeats dropped, leases that run out."""

from __future__ import annotations

from datetime import timedelta
from typing import Callable

import pytest
import redis

from notifier.delivery import DELIVERED, Delivery, Outcome, alert_key
from notifier.log import read_notifications
from paylimit.notification_record import (notifier_counts, notifier_name, read_record, record_key, recorders,
                                          redis_client)
from paylimit.settings import Settings
from tests.test_faults.helpers import wait_for
from tests.test_notifier.factory import make_alert
from tests.test_notifier.webhook_server import OK, Answer, Request, WebhookServer

pytestmark = pytest.mark.integration


def stream_ids(settings: Settings) -> list[str]:
    """The alert ids in the shared record, in order."""
    return [n.alert_id for n in read_record(redis_client(settings), settings)]


def expire_now(r: redis.Redis, key: str) -> None:
    """End a reservation's lease now (as if its holder stalled past it), without racing a short lease."""
    r.pexpire(key, 1)
    wait_for(lambda: not r.exists(key), 10, f"{key} to expire", step=0.005)


def test_redis_fsyncs_every_write(make_settings: Callable[..., Settings]) -> None:
    config = redis_client(make_settings()).config_get("append*")
    assert config["appendonly"] == "yes" and config["appendfsync"] == "always"


def test_deliver_once_then_duplicate(make_settings: Callable[..., Settings]) -> None:
    s = make_settings()
    d = Delivery(s, redis_client(s))
    alert = make_alert()
    assert d.deliver(alert).outcome is Outcome.DELIVERED
    assert d.deliver(alert).outcome is Outcome.DUPLICATE
    assert Delivery(s, redis_client(s)).deliver(alert).outcome is Outcome.DUPLICATE
    [n] = read_record(redis_client(s), s)
    assert n.alert_id == alert.alert_id and n.model_dump(exclude={"delivered_at"}) == alert.model_dump()
    assert read_notifications(s.notifications_log) == [n]  # the log, written before the record
    r = redis_client(s)
    key = alert_key(s, alert.alert_id)
    assert key.startswith(f"{s.app_id}:")
    assert r.get(key) == f"{DELIVERED} {notifier_name(s)}"
    # the mark expires after the horizon (README: Bounds), read without waiting for it
    assert s.delivered_ttl.total_seconds() - 60 < r.ttl(key) <= s.delivered_ttl.total_seconds()
    assert notifier_counts(r, s) == {notifier_name(s): 1}


def test_a_notifier_whose_lease_ran_out_cannot_record(make_settings: Callable[..., Settings]) -> None:
    """Stalled mid-POST past its lease (the lease ended with pexpire while the webhook held the POST):
    its record is refused, it reserves afresh and records once."""
    alert = make_alert()
    posts: list[Request] = []

    def answer(req: Request) -> Answer:
        posts.append(req)
        if len(posts) == 1:
            expire_now(redis_client(s), alert_key(s, alert.alert_id))
        return OK

    with WebhookServer(answer) as hook:
        s = make_settings(webhook_url=hook.url())
        d = Delivery(s, redis_client(s))
        assert d.deliver(alert).outcome is Outcome.FENCED
        assert stream_ids(s) == [] and redis_client(s).get(alert_key(s, alert.alert_id)) is None
        assert read_notifications(s.notifications_log) == []
        assert d.deliver(alert).outcome is Outcome.DELIVERED  # at-least-once to the webhook: POSTed again
    assert len(posts) == 2 and posts[0].headers["idempotency-key"] == posts[1].headers["idempotency-key"]
    assert stream_ids(s) == [alert.alert_id]


def test_a_takeover_on_another_machine_is_recorded_once(make_settings: Callable[..., Settings]) -> None:
    """Notifier A (its own home) stalls mid-POST past its lease; notifier B (another home) takes the
    alert over and records it; A's late record is refused and A then finds it delivered."""
    alert = make_alert()

    def answer(req: Request) -> Answer:
        expire_now(redis_client(a_settings), alert_key(a_settings, alert.alert_id))
        assert b.deliver(alert).outcome is Outcome.DELIVERED
        return OK

    with WebhookServer(answer) as hook:
        a_settings = make_settings(webhook_url=hook.url())
        b_settings = a_settings.model_copy(update={"home": a_settings.home.parent / "machine-b", "webhook_url": None})
        b = Delivery(b_settings, redis_client(b_settings))
        a = Delivery(a_settings, redis_client(a_settings))
        assert a.deliver(alert).outcome is Outcome.FENCED
        assert a.deliver(alert).outcome is Outcome.DUPLICATE
    r = redis_client(a_settings)
    for s in (a_settings, b_settings):  # the same record, read with either home
        assert stream_ids(s) == [alert.alert_id]
    assert recorders(r, a_settings) == {notifier_name(b_settings): [alert.alert_id]}
    assert notifier_counts(r, a_settings) == {notifier_name(b_settings): 1}
    assert read_notifications(a_settings.notifications_log) == []
    assert [n.alert_id for n in read_notifications(b_settings.notifications_log)] == [alert.alert_id]


def test_a_failed_record_keeps_the_reservation_and_the_next_attempt_records_once(
        make_settings: Callable[..., Settings]) -> None:
    """The record script fails at its XADD (the record's key holds a string): nothing is marked
    delivered; once the key is fixed, the same notifier carries on with its own reservation."""
    s = make_settings()
    r = redis_client(s)
    alert = make_alert()
    r.set(record_key(s), "not a stream")
    d = Delivery(s, r)
    with pytest.raises(redis.ResponseError):
        d.deliver(alert)
    key = alert_key(s, alert.alert_id)
    assert r.get(key) not in (None, DELIVERED) and r.pttl(key) > 0  # still reserved by d
    other = s.model_copy(update={"home": s.home.parent / "machine-b"})
    assert Delivery(other, r).deliver(alert).outcome is Outcome.BUSY  # and by nobody else
    r.delete(record_key(s))
    assert d.deliver(alert).outcome is Outcome.DELIVERED
    assert stream_ids(s) == [alert.alert_id] and notifier_counts(r, s) == {notifier_name(s): 1}
    assert [n.alert_id for n in read_notifications(s.notifications_log)] == [alert.alert_id]  # its line once


def test_crash_after_reserve_is_delivered_when_the_lease_expires(make_settings: Callable[..., Settings]) -> None:
    s = make_settings(notifier_lease=timedelta(minutes=5))
    alert = make_alert()
    r = redis_client(s)
    key = alert_key(s, alert.alert_id)
    assert r.set(key, "a-dead-notifier's-token", nx=True, px=300_000)  # reserved, then killed
    d = Delivery(s, r)
    busy = d.deliver(alert)
    assert busy.outcome is Outcome.BUSY and busy.retry_after > 100
    assert stream_ids(s) == []
    expire_now(r, key)
    assert d.deliver(alert).outcome is Outcome.DELIVERED
    assert stream_ids(s) == [alert.alert_id]


def test_failed_webhook_gives_the_reservation_back_and_records_nothing(make_settings: Callable[..., Settings]) -> None:
    from notifier.webhook import WebhookFailure
    from paylimit.runtime.processes import free_port

    s = make_settings(webhook_url=f"http://127.0.0.1:{free_port()}/hook")
    alert = make_alert()
    with pytest.raises(WebhookFailure):
        Delivery(s, redis_client(s)).deliver(alert)
    assert redis_client(s).get(alert_key(s, alert.alert_id)) is None
    assert stream_ids(s) == [] and read_notifications(s.notifications_log) == []
