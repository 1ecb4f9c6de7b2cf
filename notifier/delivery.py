"""Exactly-once delivery of one alert, keyed by `alert_id`: reserve -> deliver -> record, in Redis.

- reserve: `SET {app_id}:alert:{alert_id} <token> NX PX <lease>`, with a fresh random token per
  reservation: the fencing token. Taken by someone else -> `delivered` means a repeat (dropped,
  counted); another token means another notifier is on it (or died holding it): wait for its lease.
- deliver: the optional webhook POST (`notifier.webhook`). A POST that fails transiently raises,
  and the caller retries the alert; one the webhook gives up on (a permanent failure, or the retry
  time used up) goes to the notifications' dead-letter topic, and the alert is recorded all the same.
- log: before the POST, one line in this notifier's notifications log (`notifier.log`), written in
  full and fsynced or not at all: a full disk fails the attempt (retried, nothing recorded).
- record: one Lua script, the commit point. Only if the key still holds this reservation's token
  does it set the key to `delivered <notifier>` (expiring after `PAYLIMIT_DELIVERED_TTL`), add the
  notification to the shared record (`paylimit.notification_record`, trimmed to its latest
  `PAYLIMIT_RECORD_MAX_ENTRIES`) and count it for this notifier; otherwise it changes nothing
  (FENCED). A script runs atomically, so the check and the record are one step: a notifier whose
  lease ran out cannot record, and no alert_id is recorded twice, whichever machines the
  notifiers run on.
- The log line of an attempt that does not record (fenced, the POST failed, another notifier
  recorded it) is taken back, so the log holds exactly what this notifier recorded, in order. A
  Redis error on the record leaves it unknown whether the script ran: the line stays pending, and
  the next attempt at the same alert keeps it (the script ran, and the mark names this notifier)
  or takes it back. A notifier stopped or killed with a line pending finds it at its next start
  (the log's last line, `settle_log`) and does the same.

Crash windows: killed after reserve or mid-POST -> nothing is recorded; the lease expires and the
next holder (any notifier) delivers again, so the webhook is at-least-once across a crash (hence
its Idempotency-Key) while the record is exact. Killed after the record -> the alert is
`delivered`; the replay is dropped as a duplicate.
"""

from __future__ import annotations

import enum
import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone

import redis

from notifier.dead_letters import DeadLetterWriter
from notifier.log import CorruptLog, NotificationLog
from paylimit.notification_record import counts_key, notifier_name, record_key
from notifier.webhook import Webhook, WebhookFailure
from paylimit.contracts import LimitAlert, Notification, NotificationDeadLetter, encode
from paylimit.notification_record import counts_key, notifier_name, record_key
from paylimit.settings import Settings

log = logging.getLogger("paylimit.notifier")

DELIVERED = "delivered"

# delete the reservation only if it is still ours (a failed attempt hands the alert back at once)
RELEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0"
# the fenced record: only the holder of the reservation's token records, once (see the docstring)
# A script that fails midway keeps what it wrote (Redis has no rollback): the record entry goes first,
# so a failing XADD (e.g. a key of the wrong type) leaves the alert reserved, never marked delivered
# without its entry; the count goes last, so its failure costs a count, never a second entry.
_RECORD = """
if redis.call('get', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('xadd', KEYS[2], 'MAXLEN', ARGV[6], '*', 'notification', ARGV[3], 'notifier', ARGV[4])
redis.call('set', KEYS[1], ARGV[2], 'PX', ARGV[5])
redis.call('hincrby', KEYS[3], ARGV[4], 1)
return 1"""
# extend our own reservation (an attempt that failed on a Redis error keeps it), only if still ours
_RENEW = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) end return 0"


class Outcome(enum.Enum):
    DELIVERED = "delivered"  # (POSTed and) recorded now
    FENCED = "fenced"  # POSTed, but the lease ran out before the record: not recorded, try again
    DUPLICATE = "duplicate"  # already delivered: dropped
    BUSY = "busy"  # reserved by another token whose lease has not expired: try again later


@dataclass(frozen=True)
class Attempt:
    outcome: Outcome
    retry_after: float = 0.0  # seconds, for BUSY: what is left of the other holder's lease
    webhook_failure: WebhookFailure | None = None  # DELIVERED, but the webhook's failure was dead-lettered


def alert_key(settings: Settings, alert_id: str) -> str:
    return f"{settings.app_id}:alert:{alert_id}"


def is_delivered(mark: object) -> bool:
    """Does this alert key's value (a str: the client decodes) say the alert was delivered (by any notifier)?"""
    return isinstance(mark, str) and mark.split(" ", 1)[0] == DELIVERED


@dataclass(frozen=True)
class Pending:
    """A line in the log whose record is not known to have happened yet."""
    notification: Notification
    before: int  # the log's active segment size before the line


class Delivery:
    """Delivers alerts exactly once into the shared record (and webhook), fenced by Redis reservations."""

    def __init__(self, settings: Settings, client: redis.Redis) -> None:
        self.settings = settings
        self.redis = client
        self.name = notifier_name(settings)
        self.mark = f"{DELIVERED} {self.name}"  # a delivered alert's key: who recorded it
        self.log = NotificationLog(settings.notifications_log, settings.log_segment_bytes)
        self.webhook = Webhook(settings.webhook_url.get_secret_value(), settings.webhook_timeout,
                               settings.webhook_retry_for.total_seconds()) if settings.webhook_url else None
        # with the POST (at most half the lease) this stays within the lease
        self.dead_letters = DeadLetterWriter(settings, timeout=settings.notifier_lease.total_seconds() / 4)
        self.token = uuid.uuid4().hex  # this notifier instance (logged); reservations get their own tokens
        self._held: str | None = None  # the token of this notifier's latest reservation
        self._pending: Pending | None = None
        self._settled = False  # settle_log ran (on the first attempt: its Redis errors are retried like any)
        self.lease_ms = max(1, int(settings.notifier_lease.total_seconds() * 1000))
        self._release = client.register_script(RELEASE)
        self._renew = client.register_script(_RENEW)
        self._record_script = client.register_script(_RECORD)

    def settle_log(self) -> None:
        """At start: the log's last line stays only if this notifier recorded it (see the docstring)."""
        try:
            last = self.log.last()
        except CorruptLog as exc:
            log.error("%s: left as it is (not a line of this notifier's own)", exc)
            last = None
        if last is not None:
            notification, before = last
            # a mark lives DELIVERED_TTL from its record, which came after delivered_at: while the line
            # is younger than that, the mark says who recorded it (older, it was recorded long ago)
            if datetime.now(timezone.utc) - notification.delivered_at < self.settings.delivered_ttl:
                mark = self.redis.get(alert_key(self.settings, notification.alert_id))
                if mark != DELIVERED:  # a mark without a name predates logging first: its line followed the record
                    self._pending = Pending(notification, before)
                    self._settle(mark)
        self._settled = True

    def deliver(self, alert: LimitAlert) -> Attempt:
        """One attempt at delivering `alert`; Redis/webhook/disk errors propagate (the caller retries)."""
        if not self._settled:
            self.settle_log()
        key = alert_key(self.settings, alert.alert_id)
        token = uuid.uuid4().hex
        if not self.redis.set(key, token, nx=True, px=self.lease_ms):
            holder = self.redis.get(key)
            if holder is not None and holder == self._held and self._renew(keys=[key], args=[holder, self.lease_ms]):
                # ours from an attempt that failed before its record (e.g. Redis went away): carry on
                return self._deliver_reserved(key, holder, alert)
            self._settle(holder)
            if is_delivered(holder):
                return Attempt(Outcome.DUPLICATE)
            if holder is not None:
                ttl = self.redis.pttl(key)
                return Attempt(Outcome.BUSY, retry_after=max(ttl, 50) / 1000 if ttl > 0 else 0.05)
            return self.deliver(alert)  # the other lease ended between SET and GET: reserve again
        self._held = token
        return self._deliver_reserved(key, token, alert)

    def _deliver_reserved(self, key: str, token: str, alert: LimitAlert) -> Attempt:
        try:
            notification = self._append(alert)
            failure = self._post(notification) if self.webhook else None
        except BaseException:
            self._take_back()
            self._give_back(key, token)
            raise
        if not self._record(key, token, notification):  # a Redis error leaves the line pending
            self._take_back()
            log.warning("alert %s: the reservation's lease ran out before its record; not recorded, tried again",
                        alert.alert_id)
            return Attempt(Outcome.FENCED)
        self._pending = None
        return Attempt(Outcome.DELIVERED, webhook_failure=failure)

    def _append(self, alert: LimitAlert) -> Notification:
        """The alert's line in the log: the pending one of an earlier attempt at it, or a new one."""
        if self._pending is not None and self._pending.notification.alert_id == alert.alert_id:
            return self._pending.notification
        self._take_back()  # not expected: one alert is settled before the next
        notification = Notification(**alert.model_dump(), delivered_at=datetime.now(timezone.utc))
        self._pending = Pending(notification, self.log.append(notification))
        return notification

    def _settle(self, mark: object) -> None:
        """The pending line stays if `mark` (its alert's key) says this notifier recorded it, else it goes."""
        if self._pending is None:
            return
        if mark == self.mark:
            self._pending = None
        else:
            self._take_back()

    def _take_back(self) -> None:
        if self._pending is None:
            return
        log.info("alert %s not recorded by this notifier: its line taken back from %s",
                 self._pending.notification.alert_id, self.log.path)
        self.log.undo(self._pending.before)  # an error keeps it pending: taken back on the next try
        self._pending = None

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

    def _give_back(self, key: str, token: str) -> None:
        try:
            self._release(keys=[key], args=[token])
        except redis.RedisError as exc:
            # the lease expires by itself; nothing was recorded
            log.warning("could not release reservation %s (%s); it expires with its lease", key, exc)

    def _record(self, key: str, token: str, notification: Notification) -> bool:
        """The commit point: record once, atomically, if `token` still holds the reservation."""
        s = self.settings
        ttl_ms = int(s.delivered_ttl.total_seconds() * 1000)
        return bool(self._record_script(keys=[key, record_key(s), counts_key(s)],
                                         args=[token, self.mark, encode(notification).decode(), self.name, ttl_ms,
                                               s.record_max_entries]))
