"""Operating paylimit, on real services: a worker, a notifier and a dashboard (`paylimit worker`,
`notifier`, `dashboard` as child processes) with JSON logs and a webhook URL holding a secret.
Each answers /healthz, /readyz and /metrics (Prometheus text that `promtool check metrics`
accepts), only for its own host names; faust's /table/ and /router/ views are off; no log line
holds the secret."""

from __future__ import annotations

import json
import subprocess
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any, Iterator
from urllib.error import HTTPError

import pytest

from paylimit.kafka import ensure_topics
from paylimit.runtime.pipeline import Pipeline
from paylimit.settings import get_settings
from tests.e2e.harness import produce_transactions
from tests.test_notifier.webhook_server import OK, Request, WebhookServer, status

pytestmark = pytest.mark.integration

SECRET = "s3cr3t-" + uuid.uuid4().hex
README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


def get(url: str, host: str | None = None) -> tuple[int, str, str]:
    """(status, content type, body) of a GET, with another Host header if given."""
    request = urllib.request.Request(url, headers={"Host": host} if host else {})
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:
            return resp.status, resp.headers.get("Content-Type", ""), resp.read().decode()
    except HTTPError as exc:
        return exc.code, exc.headers.get("Content-Type", ""), exc.read().decode()


def until(check: Any, what: str, timeout: float = 120.0) -> Any:
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = check()
            if last:
                return last
        except OSError as exc:  # not listening yet
            last = exc
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what} (last: {last!r})")


def metric(text: str, line_start: str) -> float:
    values = [float(ln.rsplit(" ", 1)[1]) for ln in text.splitlines() if ln.startswith(line_start + " ")]
    assert len(values) == 1, f"{line_start!r} in:\n{text}"
    return values[0]


@pytest.fixture(scope="module")
def stack(services: tuple[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    tag = uuid.uuid4().hex[:10]
    home = tmp_path_factory.mktemp("ops")

    def answer(req: Request) -> Any:  # a webhook that refuses one user's alerts for good
        return status(400) if req.user_id == "u-refused" else OK

    with WebhookServer(answer) as hook:
        settings = ensure_topics(get_settings(
            kafka_bootstrap_servers=services[0], redis_url=services[1], daily_limit=2, dashboard_port=0,
            log_format="json", webhook_url=hook.url(f"/hook/{SECRET}")).isolated(f"ops-{tag}", home))
        pipeline = Pipeline(settings)
        try:
            pipeline.start(workers=1)
            dashboard = pipeline.start_dashboard().rstrip("/")
            urls = {"worker": pipeline.worker_url(), "notifier": pipeline.notifier_url(), "dashboard": dashboard}
            until(lambda: get(f"{urls['worker']}/readyz")[0] == 200, "the worker ready")
            # each: counted, then a heads-up (2 of 2 is 80 % or more), then over the limit: two alerts
            produce_transactions(settings, {"u-ok": 3, "u-refused": 3})
            until(lambda: all(line in get(f"{urls['notifier']}/metrics")[2] for line in (
                "paylimit_notifier_delivered_total 4.0", 'paylimit_notifier_webhook_failures_total{kind="http_4xx"} 2.0')),
                "the four alerts recorded, u-refused's two refused by the webhook")
            yield {"settings": settings, "pipeline": pipeline, "urls": urls}
        finally:
            pipeline.stop()


def test_every_metrics_endpoint_passes_promtool(stack: dict[str, Any]) -> None:
    scraped = {}
    for name, url in stack["urls"].items():
        code, content_type, body = get(f"{url}/metrics")
        assert code == 200 and content_type.startswith("text/plain"), (name, code, content_type, body)
        check = subprocess.run(["promtool", "check", "metrics"], input=body, capture_output=True, text=True)
        assert check.returncode == 0, f"{name}: {check.stdout}{check.stderr}"
        scraped[name] = body
        for family in (ln.split()[2] for ln in body.splitlines() if ln.startswith("# TYPE paylimit_")):
            assert f"`{family}`" in README, f"{family} ({name}) is not in the README's list of metrics"
    worker, notifier = scraped["worker"], scraped["notifier"]
    assert metric(worker, 'paylimit_worker_records_total{outcome="counted"}') == 2
    assert metric(worker, 'paylimit_worker_records_total{outcome="crossed"}') == 4
    assert metric(worker, "paylimit_worker_batch_records_count") >= 1
    assert metric(worker, "paylimit_worker_ready") == 1
    assert 'paylimit_worker_lag_records{partition="' in worker and metric(worker, "paylimit_worker_state_keys") >= 2
    assert metric(notifier, 'paylimit_notifier_webhook_failures_total{kind="http_4xx"}') >= 1
    assert metric(notifier, "paylimit_notifier_delivery_latency_seconds_count") == 4
    assert metric(scraped["dashboard"], 'paylimit_dashboard_source_up{source="kafka"}') == 1
    assert "process_start_time_seconds" in worker and "process_start_time_seconds" in notifier


def test_health_and_readiness(stack: dict[str, Any]) -> None:
    urls = stack["urls"]
    for name, url in urls.items():
        assert get(f"{url}/healthz")[0] == 200, name
        assert until(lambda: get(f"{url}/readyz")[0] == 200, f"{name} ready", timeout=30)
    assert json.loads(get(f"{urls['worker']}/ready")[2]) == {"ready": True}  # its first name stays


def test_faust_views_are_off(stack: dict[str, Any]) -> None:
    worker = stack["urls"]["worker"]
    day = time.strftime("%Y-%m-%d")
    for path in (f"/table/days/u-ok|{day}/", "/table/", "/router/"):
        assert get(worker + path)[0] == 404, path
    assert get(f"{worker}/users/u-ok/usage")[0] == 200


def test_a_foreign_host_header_is_refused(stack: dict[str, Any]) -> None:
    for name, url in stack["urls"].items():
        assert get(f"{url}/metrics", host="evil.example:80")[0] == 421, name
        assert get(f"{url}/healthz", host=f"localhost:{url.rsplit(':', 1)[1]}")[0] == 200, name


def test_logs_are_json_lines_without_the_secret(stack: dict[str, Any]) -> None:
    pipeline: Pipeline = stack["pipeline"]
    for svc in pipeline.services():
        lines = [ln for ln in svc.log.read_text().splitlines() if ln.strip()]
        assert lines, svc.name
        for line in lines:
            entry = json.loads(line)  # every line one JSON object
            assert {"time", "level", "logger", "message"} <= entry.keys(), line
            assert SECRET not in line, (svc.name, line)
