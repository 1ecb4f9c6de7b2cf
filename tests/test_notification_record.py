"""The shared record's readers on the real Redis: every entry in delivery order, a page at a time,
and followed from where a read left off."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Callable

import pytest

from notifier.delivery import Delivery, Outcome
from paylimit import notification_record
from paylimit.notification_record import follow_record, read_record, read_record_at, recorders, redis_client
from paylimit.settings import Settings
from tests.test_notifier.factory import make_alert

pytestmark = pytest.mark.integration


def test_the_record_is_read_in_order_across_pages_and_followed(make_settings: Callable[..., Settings],
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(notification_record, "PAGE", 2)  # five entries: three pages
    s = make_settings()
    client = redis_client(s)
    delivery = Delivery(s, client)
    alerts = [make_alert(day=date(2025, 3, 10) + timedelta(days=i)) for i in range(5)]
    for alert in alerts[:3]:
        assert delivery.deliver(alert).outcome is Outcome.DELIVERED
    first, last = read_record_at(client, s)
    assert [n.alert_id for n in first] == [a.alert_id for a in alerts[:3]]
    for alert in alerts[3:]:
        assert delivery.deliver(alert).outcome is Outcome.DELIVERED
    assert [n.alert_id for n in read_record(client, s)] == [a.alert_id for a in alerts]
    followed = []
    for n in follow_record(client, s, start=last, stopped=lambda: len(followed) == 2, block_ms=100):
        followed.append(n.alert_id)
    assert followed == [a.alert_id for a in alerts[3:]]  # only what came after the first read
    assert list(recorders(client, s).values()) == [[a.alert_id for a in alerts]]
