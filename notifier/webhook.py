"""The webhook: one POST per attempt, bounded in time, never redirected, every failure classified.

`Webhook.post()` sends a notification as JSON with `Idempotency-Key: <alert_id>` and returns on a
2xx answer; anything else raises `WebhookFailure` with a `kind`, the metric label and the dead
letter's error class:

| kind | what happened | retried |
| --- | --- | --- |
| `timeout` | no whole answer within `PAYLIMIT_WEBHOOK_TIMEOUT` (connect, send and read together) | yes |
| `connection` | refused, reset, unreachable, name not resolved, TLS handshake | yes |
| `protocol` | the answer is not HTTP (e.g. a garbage status line) | yes |
| `http_5xx`, `http_4xx` (408, 429) | the server is failing or asks us to come back | yes |
| `http_4xx` (the rest) | the server refuses this notification: sending it again changes nothing | no |
| `redirect` | a 3xx: not followed (a client that follows turns the POST into a body-less GET) | no |

`Webhook.gives_up()` says when to stop retrying: at once for a permanent failure, and for a
transient one once the webhook has been failing for `PAYLIMIT_WEBHOOK_RETRY_FOR`: transient
failures no further apart than that (plus one timeout), without an answer in between (a 2xx, or a
permanent failure, which is an answer too). The clock runs per webhook, not per alert, so an outage
holds the alerts waiting behind it up by that long once, and each later alert gets one POST until
the webhook answers again.

The URL may hold a token (in its path, query or user info); `origin()` is the only form of it that
reaches a log line, an exception message or a dead letter.
"""

from __future__ import annotations

import base64
import http.client
import math
import socket
import ssl
import threading
import time
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from paylimit.contracts import Notification, encode

TRANSIENT_4XX = frozenset({408, 429})  # Request Timeout, Too Many Requests
REASON_MAX = 200  # characters of a server's own words kept in a reason


@dataclass(eq=False)
class WebhookFailure(Exception):
    """The webhook did not take the notification."""

    kind: str
    reason: str  # one sentence, without the URL
    transient: bool
    status: int | None = None
    retry_after: float | None = None  # seconds, from a 429's or 503's Retry-After

    def __str__(self) -> str:
        return self.reason


def origin(url: str) -> str:
    """`scheme://host[:port]` of a URL: what a log may show of it (no user info, path or query)."""
    parts = urlsplit(url)
    host = f"[{parts.hostname}]" if parts.hostname and ":" in parts.hostname else parts.hostname or "?"
    return f"{parts.scheme}://{host}" + (f":{parts.port}" if parts.port else "")


class Webhook:
    """The configured webhook as one notifier (or `paylimit webhook redeliver`) sees it."""

    def __init__(self, url: str, timeout: float, retry_for: float = 0.0) -> None:
        self.timeout, self.retry_for = timeout, retry_for
        self.origin = origin(url)
        parts = urlsplit(url)
        self._https = parts.scheme == "https"
        self._host, self._port = parts.hostname or "", parts.port
        self._target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        self._auth = None
        if parts.username is not None:  # https://user:password@host/...: sent as Basic auth
            pair = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
            self._auth = "Basic " + base64.b64encode(pair.encode()).decode()
        self._context = ssl.create_default_context() if self._https else None
        self._failing_since: float | None = None  # monotonic: when the current run of transient failures began
        self._failed_at = 0.0  # monotonic: the latest transient failure
        self._alert, self._attempts = "", 0  # POSTs of the alert being sent

    def attempts(self, alert_id: str) -> int:
        """How many times this webhook has POSTed `alert_id` in a row (0 if it is not the latest alert)."""
        return self._attempts if alert_id == self._alert else 0

    def post(self, notification: Notification) -> None:
        """One POST of `notification`; returns on 2xx, raises WebhookFailure on anything else."""
        if notification.alert_id != self._alert:
            self._alert, self._attempts = notification.alert_id, 0
        self._attempts += 1
        try:
            status, retry_after = self._exchange(encode(notification), notification.alert_id)
            if not 200 <= status < 300:
                raise _status_failure(status, retry_after)
        except WebhookFailure as failure:
            self._failed(failure)
            raise
        self._failing_since = None

    def gives_up(self, failure: WebhookFailure) -> bool:
        """Whether the alert that just failed goes to the dead letters now instead of being retried."""
        return not failure.transient or self.retry_left() <= 0

    def retry_left(self) -> float:
        """Seconds until transient failures stop being retried (the full window while none is under way)."""
        if self._failing_since is None:
            return self.retry_for
        return self.retry_for - (time.monotonic() - self._failing_since)

    def _failed(self, failure: WebhookFailure) -> None:
        now = time.monotonic()
        if not failure.transient:
            self._failing_since = None  # it answered: it is up, just refusing this one
        elif self._failing_since is None or now - self._failed_at > self.retry_for + self.timeout:
            # a new run of failures: retries of one alert come within the retry time (plus the POST)
            self._failing_since = now
        self._failed_at = now

    def _exchange(self, body: bytes, alert_id: str) -> tuple[int, float | None]:
        conn: http.client.HTTPConnection
        if self._https:
            conn = http.client.HTTPSConnection(self._host, self._port, timeout=self.timeout, context=self._context)
        else:
            conn = http.client.HTTPConnection(self._host, self._port, timeout=self.timeout)
        headers = {"Content-Type": "application/json", "Idempotency-Key": alert_id, "Connection": "close",
                   "User-Agent": "paylimit-notifier"}
        if self._auth:
            headers["Authorization"] = self._auth
        # the socket timeout bounds each read, not the exchange: a server dripping one byte at a time
        # would hold the POST past the reservation's lease, so the whole exchange gets one deadline
        expired = threading.Event()
        timer = threading.Timer(self.timeout, _cut, (conn, expired))
        timer.start()
        try:
            conn.request("POST", self._target, body=body, headers=headers)
            resp = conn.getresponse()
            return resp.status, _seconds(resp.getheader("Retry-After"))
        except (http.client.HTTPException, OSError, ValueError) as exc:
            # everything the HTTP stack raises on a bad answer or a bad network: a failure of the POST
            raise _exception_failure(exc, expired.is_set(), self.timeout) from None
        finally:
            timer.cancel()
            conn.close()  # before the next attempt: at most one POST of an alert in flight


def _cut(conn: http.client.HTTPConnection, expired: threading.Event) -> None:
    expired.set()
    sock = conn.sock
    if sock is not None:
        try:
            sock.shutdown(socket.SHUT_RDWR)  # the blocked read returns at once
        except OSError:
            pass  # already closed: the exchange ended as the deadline passed


def _seconds(header: str | None) -> float | None:
    try:
        seconds = float(header) if header else None
    except ValueError:
        return None  # an HTTP date: the backoff decides
    return max(0.0, seconds) if seconds is not None and math.isfinite(seconds) else None


def _status_failure(status: int, retry_after: float | None) -> WebhookFailure:
    if 300 <= status < 400:
        return WebhookFailure("redirect", f"HTTP {status}: a redirect, not followed (set the final URL)",
                              transient=False, status=status)
    if 400 <= status < 500:
        return WebhookFailure("http_4xx", f"HTTP {status}", transient=status in TRANSIENT_4XX, status=status,
                              retry_after=retry_after)
    if 500 <= status < 600:
        return WebhookFailure("http_5xx", f"HTTP {status}", transient=True, status=status, retry_after=retry_after)
    return WebhookFailure("protocol", f"HTTP status {status} is not a final answer", transient=True, status=status)


def _exception_failure(exc: BaseException, expired: bool, timeout: float) -> WebhookFailure:
    if expired or isinstance(exc, TimeoutError):
        return WebhookFailure("timeout", f"no answer within {timeout:g} s", transient=True)
    words = " ".join(str(exc).split())[:REASON_MAX] or "no detail"  # one line, whatever the server sent
    if isinstance(exc, OSError):  # refused, reset (RemoteDisconnected too), DNS, TLS
        return WebhookFailure("connection", f"{type(exc).__name__}: {words}", transient=True)
    return WebhookFailure("protocol", f"{type(exc).__name__}: {words}", transient=True)
