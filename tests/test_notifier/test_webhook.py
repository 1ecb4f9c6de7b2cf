"""The webhook path, case by case, with the real notifier on the real broker and Redis POSTing to a
real local HTTP server (`webhook_server`) that answers badly on purpose: a garbage status line, a
302, a 400, too slowly, a byte at a time; a URL without a scheme; a token in the URL."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
from datetime import timedelta
from typing import Any, Callable, Iterator

import pytest
from pydantic import SecretStr, ValidationError

from notifier.dead_letters import read_dead_letters
from notifier.log import read_notifications
from notifier.service import Notifier
from paylimit.contracts import LimitAlert, Notification, NotificationDeadLetter
from paylimit.runtime.processes import free_port
from paylimit.settings import Settings, get_settings
from tests.test_notifier.factory import make_alert
from tests.test_notifier.test_service import produce_alerts, wait_for
from tests.test_notifier.webhook_server import GARBAGE, OK, Answer, Request, WebhookServer, status

pytestmark = pytest.mark.integration

BAD, GOOD = make_alert("bad-user"), make_alert("good-user")


class Running:
    """A Notifier on a thread, as `paylimit notifier` runs it; `died` holds what killed the thread."""

    def __init__(self, settings: Settings) -> None:
        self.notifier = Notifier(settings, poll_timeout=0.2)
        self.died: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            self.notifier.run()
        except BaseException as exc:
            self.died = exc
            raise

    def until(self, predicate: Callable[[], bool], timeout: float = 90.0) -> None:
        """Wait for `predicate`, failing at once if the notifier died on the way."""
        wait_for(lambda: self.died is not None or predicate(), timeout)
        assert self.died is None, f"the notifier died: {self.died!r}"

    @property
    def stats(self) -> Any:
        return self.notifier.stats


@pytest.fixture
def start() -> Iterator[Callable[[Settings], Running]]:
    running: list[Running] = []

    def go(settings: Settings) -> Running:
        running.append(Running(settings))
        return running[-1]

    yield go
    for r in running:
        r.notifier.stop()
        r.thread.join(timeout=30)


@pytest.fixture
def hook_settings(make_settings: Callable[..., Settings]) -> Callable[..., Settings]:
    """Settings on fresh topics (one partition: the alerts come in the order produced) with a webhook."""

    def make(url: str, **overrides: Any) -> Settings:
        tag = os.urandom(4).hex()
        return make_settings(partitions=1, webhook_url=url, topic_notifications_dlq=f"ndlq-{tag}", **overrides)

    return make


def by_user(bad: Answer) -> Callable[[Request], Answer]:
    """`bad` for BAD's alert, 200 for everything else."""
    return lambda req: bad if req.user_id == BAD.user_id else OK


def dead_letters(settings: Settings) -> dict[str, NotificationDeadLetter]:
    return {d.alert_id: d for d in read_dead_letters(settings)}


def logged(settings: Settings) -> list[str]:
    return [n.alert_id for n in read_notifications(settings.notifications_log)]


def posts_of(hook: WebhookServer, alert: LimitAlert) -> list[Request]:
    return [r for r in hook.received() if r.alert_id == alert.alert_id]


def never_two_in_flight(hook: WebhookServer) -> bool:
    return all(r.alert_id not in r.concurrent for r in hook.received())


def test_a_garbage_status_line_is_a_failure_not_a_crash(hook_settings: Callable[..., Settings],
                                                        start: Callable[[Settings], Running]) -> None:
    """(a) http.client.BadStatusLine escaped the notifier, which died (and crash-looped under compose)."""
    with WebhookServer(by_user(GARBAGE)) as hook:
        s = hook_settings(hook.url(), webhook_retry_for=timedelta(seconds=2))
        produce_alerts(s, [BAD, GOOD])
        n = start(s)
        n.until(lambda: n.stats.delivered == 2)
        assert len(posts_of(hook, BAD)) >= 2  # a protocol error is retried ...
        assert n.stats.webhook_failures["protocol"] == len(posts_of(hook, BAD))
        dead = dead_letters(s)[BAD.alert_id]  # ... until the retry time is used up
        assert (dead.error, dead.attempts) == ("protocol", len(posts_of(hook, BAD)))
        assert dead.reason == "BadStatusLine: SMTP ready, not HTTP at all" and dead.notification.user_id == BAD.user_id
        assert len(posts_of(hook, GOOD)) == 1 and list(dead_letters(s)) == [BAD.alert_id]
        assert logged(s) == [BAD.alert_id, GOOD.alert_id]  # logged all the same
        assert n.stats.webhook_dead_lettered == 1 and n.thread.is_alive()
        assert n.stats.as_dict()["webhook_failures"] == {"protocol": len(posts_of(hook, BAD))}


def test_a_redirect_is_not_followed(hook_settings: Callable[..., Settings],
                                    start: Callable[[Settings], Running]) -> None:
    """(b) a 302 was followed as a body-less GET and the alert counted as delivered to the webhook."""
    with WebhookServer(lambda req: status(302, "Location: /moved") if req.method == "POST" else OK) as hook:
        s = hook_settings(hook.url())
        produce_alerts(s, [BAD])
        n = start(s)
        n.until(lambda: n.stats.delivered == 1)
        assert [r.method for r in hook.received(None)] == ["POST"]  # no GET of /moved
        dead = dead_letters(s)[BAD.alert_id]
        assert (dead.error, dead.status, dead.attempts) == ("redirect", 302, 1)
        assert dict(n.stats.webhook_failures) == {"redirect": 1} and logged(s) == [BAD.alert_id]


def test_a_400_is_dead_lettered_at_once_and_the_next_alert_goes_through(
        hook_settings: Callable[..., Settings], start: Callable[[Settings], Running]) -> None:
    """(c) a 400 was retried every 2 s forever and held up every later alert."""
    with WebhookServer(by_user(status(400, reason="Bad Request"))) as hook:
        s = hook_settings(hook.url())  # the default retry time (minutes) would hold GOOD up if a 400 were retried
        produce_alerts(s, [BAD, GOOD])
        n = start(s)
        n.until(lambda: n.stats.delivered == 2, timeout=60)
        assert len(posts_of(hook, BAD)) == 1 and len(posts_of(hook, GOOD)) == 1
        dead = dead_letters(s)[BAD.alert_id]
        assert (dead.error, dead.status, dead.reason) == ("http_4xx", 400, "HTTP 400")
        assert dict(n.stats.webhook_failures) == {"http_4xx": 1} and n.stats.webhook_dead_lettered == 1
        assert logged(s) == [BAD.alert_id, GOOD.alert_id]
        post = posts_of(hook, GOOD)[0]
        assert post.headers["idempotency-key"] == GOOD.alert_id and post.headers["content-type"] == "application/json"
        assert Notification.model_validate_json(post.body).model_dump(exclude={"delivered_at"}) == GOOD.model_dump()


def test_transient_failures_are_retried_until_the_webhook_takes_the_alert(
        hook_settings: Callable[..., Settings], start: Callable[[Settings], Running]) -> None:
    answers = iter([status(503), status(429, "Retry-After: 0"), status(408), status(500)])
    with WebhookServer(lambda req: next(answers, OK)) as hook:
        s = hook_settings(hook.url())
        produce_alerts(s, [GOOD])
        n = start(s)
        n.until(lambda: n.stats.delivered == 1)
        assert len(posts_of(hook, GOOD)) == 5 and never_two_in_flight(hook)
        assert dict(n.stats.webhook_failures) == {"http_5xx": 2, "http_4xx": 2} and n.stats.retries == 4
        assert n.stats.webhook_dead_lettered == 0 and dead_letters(s) == {}


def test_a_webhook_slower_than_the_old_fixed_timeout_gets_one_post(
        hook_settings: Callable[..., Settings], start: Callable[[Settings], Running]) -> None:
    """(d) a webhook slower than the fixed 5 s timeout got the same alert POSTed again and again."""
    with WebhookServer(Answer(OK.raw, delay=6)) as hook:
        s = hook_settings(hook.url(), webhook_timeout=12)
        produce_alerts(s, [GOOD])
        n = start(s)
        n.until(lambda: n.stats.delivered == 1)
        assert len(posts_of(hook, GOOD)) == 1 and not n.stats.webhook_failures


def test_a_webhook_that_never_answers_in_time_is_given_up_one_post_at_a_time(
        hook_settings: Callable[..., Settings], start: Callable[[Settings], Running]) -> None:
    """(d) each POST ends at the timeout, before the next one starts; after the retry time the
    alert is dead-lettered and the next one goes through."""
    with WebhookServer(by_user(Answer(OK.raw, delay=600))) as hook:
        s = hook_settings(hook.url(), webhook_timeout=1, webhook_retry_for=timedelta(seconds=3))
        produce_alerts(s, [BAD, GOOD])
        n = start(s)
        n.until(lambda: n.stats.delivered == 2)
        posts = posts_of(hook, BAD)
        assert 2 <= len(posts) and never_two_in_flight(hook)
        dead = dead_letters(s)[BAD.alert_id]
        assert (dead.error, dead.attempts) == ("timeout", len(posts))
        assert dict(n.stats.webhook_failures) == {"timeout": len(posts)} and len(posts_of(hook, GOOD)) == 1


def test_a_dripping_answer_cannot_outlive_the_reservation(
        hook_settings: Callable[..., Settings], start: Callable[[Settings], Running]) -> None:
    """(d) two notifiers on one alert: a POST kept alive past the reservation's lease by a server
    dripping its answer a byte at a time (every read within the socket timeout) let the second
    notifier take the alert over and POST it while the first POST was still in flight."""
    with WebhookServer(Answer(OK.raw, drip=0.3)) as hook:  # ~20 s for the whole answer
        s = hook_settings(hook.url(), webhook_timeout=1.5, notifier_lease=timedelta(seconds=3),
                          webhook_retry_for=timedelta(seconds=6))
        produce_alerts(s, [BAD])
        first = start(s)
        second = start(s.model_copy(update={"notifier_group": f"{s.app_id}-second"}))
        first.until(lambda: first.stats.delivered + second.stats.delivered == 1
                    and first.stats.duplicates_dropped + second.stats.duplicates_dropped == 1)
        assert len(posts_of(hook, BAD)) >= 2 and never_two_in_flight(hook)
        assert dead_letters(s)[BAD.alert_id].error == "timeout" and logged(s) == [BAD.alert_id]


def test_the_retry_time_runs_while_the_webhook_keeps_failing_not_since_any_old_failure() -> None:
    """The retry time is per webhook: a 400 (an answer: the webhook is up) does not start it, and a
    transient failure long after the last one starts it afresh; only failures in a row use it up."""
    from notifier.webhook import Webhook, WebhookFailure

    answers = iter([status(400), status(503), status(503), status(503)])
    with WebhookServer(lambda req: next(answers)) as server:
        hook = Webhook(server.url(), timeout=0.5, retry_for=0.5)

        def post(alert: LimitAlert) -> WebhookFailure:
            with pytest.raises(WebhookFailure) as failed:
                hook.post(make_alert_notification(alert))
            return failed.value

        assert hook.gives_up(post(BAD))  # 400: at once
        threading.Event().wait(0.6)  # longer than the retry time
        assert not hook.gives_up(post(GOOD))  # a 503 after a 400: a fresh retry time
        threading.Event().wait(0.6)
        assert hook.gives_up(post(GOOD))  # 503s in a row for longer than the retry time: given up
        threading.Event().wait(1.2)  # more than the retry time and a timeout since the last failure
        assert not hook.gives_up(post(BAD))  # a new run of failures


def make_alert_notification(alert: LimitAlert) -> Notification:
    from tests.test_notifier.factory import notification_of

    return notification_of(alert)


def test_a_url_without_a_scheme_is_refused_at_start(services: tuple[str, str], tmp_path: Any) -> None:
    """(e) PAYLIMIT_WEBHOOK_URL=localhost:9999/hook was accepted, then failed on every alert."""
    env = {**os.environ, "PAYLIMIT_KAFKA_BOOTSTRAP_SERVERS": services[0], "PAYLIMIT_REDIS_URL": services[1],
           "PAYLIMIT_HOME": str(tmp_path), "PAYLIMIT_APP_ID": f"scheme-{os.urandom(4).hex()}",
           "PAYLIMIT_WEBHOOK_URL": "localhost:9999/hook"}
    done = subprocess.run([sys.executable, "-m", "paylimit", "notifier"], env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        "error: PAYLIMIT_WEBHOOK_URL: must be an http:// or https:// URL with a host, "
        "e.g. https://hooks.example.com/paylimit"]


@pytest.mark.parametrize("url", ["localhost:9999/hook", "127.0.0.1:9999", "ftp://host/x", "http://", "http:///path",
                                 "https://host:99999/x", "//host/x"])
def test_webhook_urls_refused(url: str) -> None:
    with pytest.raises(ValidationError) as refused:
        get_settings(webhook_url=url + "?token=s3cret")
    assert "s3cret" not in refused.value.errors()[0]["msg"]  # the one-line error never repeats the URL


@pytest.mark.parametrize("url", ["http://127.0.0.1:9999/hook", "https://hooks.example.com/T/B/x?token=1",
                                 "https://user:pw@[::1]:8443/"])
def test_webhook_urls_accepted(url: str) -> None:
    s = get_settings(webhook_url=url)
    assert s.webhook_url is not None and s.webhook_url.get_secret_value() == url


def test_unset_webhook_url_and_the_timeout_within_the_lease() -> None:
    assert get_settings(webhook_url="").webhook_url is None
    with pytest.raises(ValidationError, match="at most half of PAYLIMIT_NOTIFIER_LEASE"):
        get_settings(webhook_url="http://h/x", webhook_timeout=20, notifier_lease=timedelta(seconds=30))
    assert get_settings(webhook_timeout=20, notifier_lease=timedelta(seconds=30)).webhook_timeout == 20  # no webhook


def test_the_urls_are_secrets_yet_reach_child_processes(monkeypatch: pytest.MonkeyPatch) -> None:
    s = get_settings(webhook_url="https://hooks.example.com/s3cret-path?token=s3cret-query",
                     redis_url="redis://:s3cret-pw@127.0.0.1:6379/0")
    assert "s3cret" not in repr(s) and "s3cret" not in str(s.model_dump())
    env = s.as_env()
    assert env["PAYLIMIT_WEBHOOK_URL"] == "https://hooks.example.com/s3cret-path?token=s3cret-query"
    assert env["PAYLIMIT_REDIS_URL"] == "redis://:s3cret-pw@127.0.0.1:6379/0"
    for name, value in env.items():  # what a child process started with them reads
        monkeypatch.setenv(name, value)
    child = get_settings()
    assert child.webhook_url == s.webhook_url and child.redis_url == s.redis_url


def test_no_token_in_the_url_reaches_the_log(hook_settings: Callable[..., Settings],
                                             start: Callable[[Settings], Running],
                                             caplog: pytest.LogCaptureFixture) -> None:
    """(f) the full URL, token and all, was written to the log on every retry."""
    answers = iter([status(503), status(503), GARBAGE])
    with WebhookServer(lambda req: next(answers, status(400))) as hook:
        url = f"http://s3cret-user:s3cret-pw@127.0.0.1:{hook.port}/hook/s3cret-path?token=s3cret-query"
        s = hook_settings(url)
        caplog.set_level(logging.DEBUG)
        produce_alerts(s, [BAD])
        n = start(s)
        n.until(lambda: n.stats.delivered == 1)
        n.notifier.stop()
        n.thread.join(timeout=30)
        assert len(hook.received()) == 4  # 503, 503, garbage: retried; 400: dead-lettered
        post = hook.received()[0]  # the server got the token, the user info as Basic auth
        assert post.path == "/hook/s3cret-path?token=s3cret-query"
        assert post.headers["authorization"] == "Basic czNjcmV0LXVzZXI6czNjcmV0LXB3"  # s3cret-user:s3cret-pw
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert text.count(f"http://127.0.0.1:{hook.port}") >= 4  # scheme and host, on every retry and the dead letter
    assert "s3cret" not in text
    dead = dead_letters(s)[BAD.alert_id]
    assert dead.webhook == f"http://127.0.0.1:{hook.port}" and "s3cret" not in dead.model_dump_json()


def test_no_redis_password_reaches_the_log(make_settings: Callable[..., Settings],
                                           caplog: pytest.LogCaptureFixture) -> None:
    s = make_settings()
    down = s.model_copy(update={"redis_url": SecretStr(f"redis://:s3cret-pw@127.0.0.1:{free_port()}/0")})
    produce_alerts(s, [BAD])
    caplog.set_level(logging.DEBUG)
    n = Running(down)
    n.until(lambda: n.stats.retries >= 3)
    n.notifier.stop()
    n.thread.join(timeout=30)
    assert "s3cret" not in "\n".join(r.getMessage() for r in caplog.records)
