"""Sending dead-lettered notifications to the webhook again (`paylimit webhook redeliver`).

Each alert is reserved in Redis under `{app_id}:webhook:{alert_id}` (`SET NX` with a lease, as the
notifier reserves an alert), so at most one POST of it is in flight whoever runs the command, and
marked `redelivered <time>` once the webhook took it, so running the command again does not send
it twice. The POST carries `Idempotency-Key: alert_id` like the notifier's.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timezone

import redis

from notifier.delivery import RELEASE
from notifier.webhook import Webhook, WebhookFailure
from paylimit.contracts import NotificationDeadLetter
from paylimit.settings import Settings

REDELIVERED = "redelivered"  # the mark of a redelivered alert: "redelivered <ISO time>"


def mark_key(settings: Settings, alert_id: str) -> str:
    return f"{settings.app_id}:webhook:{alert_id}"


def redelivered_at(settings: Settings, client: redis.Redis, alert_ids: list[str]) -> dict[str, datetime]:
    """When each of these alerts was redelivered, for those that were."""
    if not alert_ids:
        return {}
    marks = client.mget([mark_key(settings, a) for a in alert_ids])
    return {a: datetime.fromisoformat(m.split(" ", 1)[1]) for a, m in zip(alert_ids, marks)
            if isinstance(m, str) and m.startswith(REDELIVERED + " ")}


@dataclass(frozen=True)
class Redelivery:
    alert_id: str
    result: str  # redelivered | already | busy | failed
    detail: str = ""  # when it was redelivered before, or why it failed


def redeliver(settings: Settings, client: redis.Redis, webhook: Webhook, dead: NotificationDeadLetter) -> Redelivery:
    """POST one dead letter's notification again, unless it was redelivered already or someone else is on it."""
    key, token = mark_key(settings, dead.alert_id), f"sending {uuid.uuid4().hex}"
    # the lease is at least twice the POST's timeout (a setting's check): it outlives the POST
    if not client.set(key, token, nx=True, px=int(settings.notifier_lease.total_seconds() * 1000)):
        mark = client.get(key)
        if isinstance(mark, str) and mark.startswith(REDELIVERED):
            return Redelivery(dead.alert_id, "already", f"at {mark.split(' ', 1)[1][:19].replace('T', ' ')} UTC")
        return Redelivery(dead.alert_id, "busy", "another redelivery of it is under way")
    try:
        webhook.post(dead.notification)
    except BaseException as exc:
        client.register_script(RELEASE)(keys=[key], args=[token])  # hand it back to a later run
        if isinstance(exc, WebhookFailure):
            return Redelivery(dead.alert_id, "failed", f"{exc.kind}: {exc.reason}")
        raise
    client.set(key, f"{REDELIVERED} {datetime.now(timezone.utc).isoformat()}")
    return Redelivery(dead.alert_id, "redelivered")
