"""`paylimit webhook dead-letters | redeliver` with CliRunner, on the dead letters the real notifier
wrote on the real broker when a real local webhook refused its alerts, redelivered to one that fails
and one that takes them."""

from __future__ import annotations

import json
from typing import Any, Callable

import pytest
from typer.testing import CliRunner

from notifier.log import read_notifications
from paylimit.cli.main import app
from paylimit.contracts import Notification
from paylimit.errors import ConfigError
from paylimit.settings import Settings
from tests.test_notifier.test_service import produce_alerts
from tests.test_notifier.test_webhook import BAD, GOOD, Running, hook_settings, start  # noqa: F401 (fixtures)
from tests.test_notifier.webhook_server import OK, WebhookServer, status

pytestmark = pytest.mark.integration

runner = CliRunner()


def invoke(settings: Settings, *args: str, **env: str) -> tuple[int, str]:
    result = runner.invoke(app, ["webhook", *args], env={**settings.as_env(), "COLUMNS": "250", **env})
    return result.exit_code, result.output


def listed(settings: Settings) -> dict[str, dict[str, Any]]:
    code, out = invoke(settings, "dead-letters", "--json")
    assert code == 0, out
    return {row["alert_id"]: row for row in map(json.loads, out.splitlines())}


@pytest.fixture
def dead_lettered(hook_settings: Callable[..., Settings], start: Callable[[Settings], Running]) -> Settings:
    """Settings whose notifier logged BAD and GOOD and dead-lettered both: its webhook answered 400."""
    with WebhookServer(status(400)) as refusing:
        s = hook_settings(refusing.url())
        produce_alerts(s, [BAD, GOOD])
        n = start(s)
        n.until(lambda: n.stats.webhook_dead_lettered == 2)
    return s


def test_list_and_redeliver_each_once(dead_lettered: Settings) -> None:
    s = dead_lettered
    logged = {n.alert_id: n for n in read_notifications(s.notifications_log)}
    rows = listed(s)
    assert set(rows) == {BAD.alert_id, GOOD.alert_id}
    assert {(r["error"], r["status"], r["redelivered_at"]) for r in rows.values()} == {("http_4xx", 400, None)}
    assert Notification.model_validate(rows[BAD.alert_id]["notification"]) == logged[BAD.alert_id]
    code, out = invoke(s, "dead-letters")
    assert code == 0 and "bad-user" in out and "HTTP 400" in out

    with WebhookServer(status(503)) as failing:  # still failing: reported, exit 1, nothing marked
        code, out = invoke(s, "redeliver", BAD.alert_id, PAYLIMIT_WEBHOOK_URL=failing.url())
        assert code == 1 and "failed" in out and "http_5xx" in out and len(failing.received()) == 1
    assert listed(s)[BAD.alert_id]["redelivered_at"] is None

    with WebhookServer(OK) as taking:
        code, out = invoke(s, "redeliver", BAD.alert_id, PAYLIMIT_WEBHOOK_URL=taking.url())
        assert code == 0 and "redelivered" in out
        [post] = taking.received()
        assert post.headers["idempotency-key"] == BAD.alert_id
        assert Notification.model_validate_json(post.body) == logged[BAD.alert_id]  # as logged, delivered_at too

        code, out = invoke(s, "redeliver", "--all", PAYLIMIT_WEBHOOK_URL=taking.url())
        assert code == 0 and "already" in out  # BAD is not sent twice
        assert [r.alert_id for r in taking.received()] == [BAD.alert_id, GOOD.alert_id]

        code, out = invoke(s, "redeliver", "--all", PAYLIMIT_WEBHOOK_URL=taking.url())
        assert code == 0 and len(taking.received()) == 2 and "2 of 2 delivered" in out
    assert all(r["redelivered_at"] for r in listed(s).values())


def test_redeliver_usage_errors(dead_lettered: Settings) -> None:
    def refused(*args: str, **env: str) -> str:
        # the root app's __call__ (not CliRunner) prints a ConfigError as one line, exit 1
        result = runner.invoke(app, ["webhook", "redeliver", *args], env={**dead_lettered.as_env(), **env})
        assert result.exit_code == 1 and isinstance(result.exception, ConfigError), result.output
        return str(result.exception)

    assert refused() == refused("--all", BAD.alert_id) == "give one ALERT_ID or --all"
    topic = dead_lettered.topic_notifications_dlq
    assert refused("no-such-alert") == f"no dead letter of alert no-such-alert on {topic}"
    no_url = refused("--all", PAYLIMIT_WEBHOOK_URL="")
    assert no_url == "PAYLIMIT_WEBHOOK_URL is not set: there is no webhook to redeliver to"


def test_no_dead_letters_on_a_fresh_topic(hook_settings: Callable[..., Settings]) -> None:
    s = hook_settings("http://127.0.0.1:1/hook")
    assert listed(s) == {}
    assert listed(s.model_copy(update={"topic_notifications_dlq": "never-created"})) == {}
