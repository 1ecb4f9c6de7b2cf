"""Exactly-once delivery of one alert, keyed by `alert_id`: reserve -> deliver -> confirm, in Redis.

- reserve: `SET {app_id}:alert:{alert_id} <token> NX PX <lease>`. Taken by someone else ->
  `delivered` means a repeat (dropped, counted); a token means another notifier is on it (or died
  holding it): wait for its lease to expire.
- deliver: the optional webhook POST (`notifier.webhook`), then one line in the notifications log
  (flush + fsync). The log line is the delivery's commit point. A POST that fails transiently
  raises, and the caller retries the alert; one the webhook gives up on (a permanent failure, or
  the retry time used up) goes to the notifications' dead-letter topic, acknowledged before the
  alert is logged and confirmed like any other.
- confirm: one Lua script that sets the key to `delivered` (no expiry) and XADDs the notification
  to the stream `{app_id}:notifications`, unless the key already says `delivered` (atomic, so only
  one confirmer adds it).

Crash windows: killed after reserve -> the lease expires and the next attempt delivers. Killed
after the log append but before confirm -> whoever reserves next finds the alert_id already in
the log (`LogIndex`, checked after every reservation, so a stale reservation never causes a second
append) and only confirms. Nothing marks an alert as sent before its log line is on disk.
The webhook is at-least-once across such a crash (hence the idempotency key); the log is exact.
"""

from __future__ import annotations

import enum
import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone

import redis

from notifier.dead_letters import DeadLetterWriter
from notifier.log import LogIndex, append_notification, read_notifications
from notifier.webhook import Webhook, WebhookFailure
from paylimit.contracts import LimitAlert, Notification, NotificationDeadLetter, encode
from paylimit.errors import ConfigError
from paylimit.settings import Settings

log = logging.getLogger("paylimit.notifier")

DELIVERED = "delivered"
STREAM_MAXLEN = 1_000_000  # approximate cap of the live-followers stream; the log keeps everything

# delete the reservation only if it is still ours (a failed attempt hands the alert back at once)
RELEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0"
# mark delivered and announce on the stream, once: a script runs atomically, so a racing confirmer
# finds `delivered` and adds nothing (one round trip, where WATCH/GET/MULTI/EXEC took three)
_CONFIRM = """
if redis.call('get', KEYS[1]) == ARGV[1] then return 0 end
redis.call('set', KEYS[1], ARGV[1])
redis.call('xadd', KEYS[2], 'MAXLEN', '~', ARGV[2], '*', 'notification', ARGV[3])
return 1"""


class Outcome(enum.Enum):
    DELIVERED = "delivered"  # appended to the log (and POSTed) and confirmed now
    RECOVERED = "recovered"  # the log already held it (a crash after append): confirmed, not appended
    DUPLICATE = "duplicate"  # already delivered: dropped
    BUSY = "busy"  # reserved by another token whose lease has not expired: try again later


@dataclass(frozen=True)
class Attempt:
    outcome: Outcome
    retry_after: float = 0.0  # seconds, for BUSY: what is left of the other holder's lease
    webhook_failure: WebhookFailure | None = None  # DELIVERED, but the webhook's failure was dead-lettered


def redis_client(settings: Settings) -> redis.Redis:
    """A Redis client for the notifier (no I/O until first use)."""
    if not settings.redis_url:
        raise ConfigError("Redis URL is not set (PAYLIMIT_REDIS_URL)")
    return redis.Redis.from_url(settings.redis_url.get_secret_value(), decode_responses=True, socket_timeout=5,
                                socket_connect_timeout=2)


def alert_key(settings: Settings, alert_id: str) -> str:
    return f"{settings.app_id}:alert:{alert_id}"


def stream_key(settings: Settings) -> str:
    return f"{settings.app_id}:notifications"


class Delivery:
    """Delivers alerts exactly once into the log (and webhook), with Redis as the ledger."""

    def __init__(self, settings: Settings, client: redis.Redis, index: LogIndex | None = None) -> None:
        self.settings = settings
        self.redis = client
        self.index = index or LogIndex(settings.notifications_log)
        self.webhook = Webhook(settings.webhook_url.get_secret_value(), settings.webhook_timeout,
                               settings.webhook_retry_for.total_seconds()) if settings.webhook_url else None
        # with the POST (at most half the lease) this stays within the lease
        self.dead_letters = DeadLetterWriter(settings, timeout=settings.notifier_lease.total_seconds() / 4)
        self.token = uuid.uuid4().hex  # this notifier instance; one reservation at a time
        self.lease_ms = max(1, int(settings.notifier_lease.total_seconds() * 1000))
        self._release = client.register_script(RELEASE)
        self._confirm_script = client.register_script(_CONFIRM)

    def deliver(self, alert: LimitAlert) -> Attempt:
        """One attempt at delivering `alert`; Redis/log/webhook errors propagate (the caller retries)."""
        key = alert_key(self.settings, alert.alert_id)
        if not self.redis.set(key, self.token, nx=True, px=self.lease_ms):
            holder = self.redis.get(key)
            if holder == self.token:
                # ours from an attempt that failed to confirm (e.g. Redis went away): carry on
                self.redis.set(key, self.token, xx=True, px=self.lease_ms)
                return self._deliver_reserved(key, alert)
            if holder == DELIVERED:
                return Attempt(Outcome.DUPLICATE)
            if holder is not None:
                ttl = self.redis.pttl(key)
                return Attempt(Outcome.BUSY, retry_after=max(ttl, 50) / 1000 if ttl > 0 else 0.05)
            return self.deliver(alert)  # the other lease ended between SET and GET: reserve again
        return self._deliver_reserved(key, alert)

    def _deliver_reserved(self, key: str, alert: LimitAlert) -> Attempt:
        try:
            if self.index.contains(alert.alert_id):
                # a previous holder appended and died before confirming: confirm only
                notification = self._logged_notification(alert)
                self._confirm(key, notification)
                return Attempt(Outcome.RECOVERED)
            notification = Notification(**alert.model_dump(), delivered_at=datetime.now(timezone.utc))
            failure = self._post(notification) if self.webhook else None
            append_notification(self.settings.notifications_log, notification)
        except BaseException:
            self._give_back(key)
            raise
        self._confirm(key, notification)
        return Attempt(Outcome.DELIVERED, webhook_failure=failure)

    def _post(self, notification: Notification) -> WebhookFailure | None:
        """POST to the webhook; a failure it gives up on is dead-lettered and returned, any other raised."""
        assert self.webhook is not None
        try:
            # the POST's whole deadline is at most half the lease (a setting's check), so no other
            # notifier can take the alert over while it is in flight
            self.webhook.post(notification)
        except WebhookFailure as failure:
            if not self.webhook.gives_up(failure):
                raise
            self.dead_letters.send(NotificationDeadLetter(
                alert_id=notification.alert_id, notification=notification, webhook=self.webhook.origin,
                error=failure.kind, status=failure.status, reason=failure.reason,
                attempts=self.webhook.attempts(notification.alert_id), dead_lettered_at=datetime.now(timezone.utc)))
            return failure
        return None

    def _logged_notification(self, alert: LimitAlert) -> Notification:
        # the stream gets the same delivered_at the log holds; scanning is fine, alerts are rare
        for n in read_notifications(self.settings.notifications_log):
            if n.alert_id == alert.alert_id:
                return n
        return Notification(**alert.model_dump(), delivered_at=datetime.now(timezone.utc))

    def _give_back(self, key: str) -> None:
        try:
            self._release(keys=[key], args=[self.token])
        except redis.RedisError as exc:
            # the lease expires by itself; nothing was marked delivered
            log.warning("could not release reservation %s (%s); it expires with its lease", key, exc)

    def _confirm(self, key: str, notification: Notification) -> None:
        """Mark delivered and announce on the stream, once, atomically."""
        self._confirm_script(keys=[key, stream_key(self.settings)],
                             args=[DELIVERED, STREAM_MAXLEN, encode(notification).decode()])
