"""The dashboard in headless Chromium (Debian's, driven by Playwright; no browser download),
against a real worker, notifier and dashboard process on the real Kafka and Redis.

Set DASHBOARD_SCREENSHOT=path to keep a screenshot of the page with the test's data in it
(docs/dashboard.png is made that way).
"""

from __future__ import annotations

import json
import os
import shutil
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from playwright.sync_api import ConsoleMessage, Page, expect, sync_playwright

from paylimit.runtime.pipeline import Pipeline
from paylimit.settings import Settings
from tests.e2e.harness import produce_transactions as produce

pytestmark = pytest.mark.integration

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
LIMIT = 3


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=3) as resp:
        return json.load(resp)


def wait_for(check: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = check()
            if last:
                return last
        except OSError as exc:  # the worker's HTTP server is still starting
            last = exc
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what} (last: {last!r})")


@pytest.fixture
def running(make_settings: Callable[..., Settings]) -> Iterator[tuple[Settings, Pipeline, str]]:
    settings = make_settings(daily_limit=LIMIT, dashboard_port=0)
    pipeline = Pipeline(settings)
    try:
        pipeline.start(workers=1)
        url = pipeline.start_dashboard()
        yield settings, pipeline, url
    finally:
        pipeline.stop()


@pytest.fixture
def page() -> Iterator[tuple[Page, list[str]]]:
    errors: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})

        def on_console(msg: ConsoleMessage) -> None:
            if msg.type == "error":
                errors.append(msg.text)

        page.on("console", on_console)
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        yield page, errors
        browser.close()


def test_dashboard_live(running: tuple[Settings, Pipeline, str], page: tuple[Page, list[str]],
                        tmp_path: Path) -> None:
    settings, pipeline, url = running
    browser_page, console_errors = page
    tag = uuid.uuid4().hex[:6]
    alice, bob, carol = f"alice-{tag}", f"bob-{tag}", f"carol-{tag}"
    produce(settings, {alice: 1, bob: LIMIT, carol: LIMIT - 1})
    produce(settings, {alice: 2}, status="declined")
    worker = pipeline.worker_url()

    def usage(user: str, query: str = "") -> dict[str, Any]:
        return get_json(f"{worker}/users/{user}/usage{query}")

    wait_for(lambda: usage(bob)["count"] == LIMIT and usage(carol)["count"] == LIMIT - 1 and usage(alice)["count"] == 1,
             90, "the worker to count the first transactions")

    # the page loads, with live numbers
    browser_page.goto(url)
    expect(browser_page.locator("#updated")).to_contain_text("updated", timeout=10_000)
    expect(browser_page.locator("#users-near li[data-user='%s']" % bob)).to_be_visible(timeout=10_000)

    # the search box shows what the worker's usage endpoint says, today and on a given date
    expected = usage(carol)
    browser_page.fill("#search-user", carol)
    browser_page.click("#search button")
    result = browser_page.locator("#usage-result")
    expect(result).to_be_visible(timeout=5_000)
    shown = {f: browser_page.inner_text(f"#usage-{f}") for f in ("user", "count", "limit", "remaining", "date")}
    assert shown == {"user": carol, "count": str(expected["count"]), "limit": str(expected["limit"]),
                     "remaining": str(expected["remaining"]), "date": expected["local_date"]}
    assert browser_page.inner_text("#usage-zone") == expected["timezone"]
    browser_page.fill("#search-date", expected["local_date"])
    browser_page.fill("#search-user", alice)
    browser_page.click("#search button")
    on_date = usage(alice, f"?date={expected['local_date']}")
    expect(browser_page.locator("#usage-user")).to_have_text(alice, timeout=5_000)
    expect(browser_page.locator("#usage-count")).to_have_text(str(on_date["count"]))
    expect(browser_page.locator("#usage-remaining")).to_have_text(str(on_date["remaining"]))

    # bob's next transaction takes him over: the notification shows up within a few seconds of delivery
    produce(settings, {bob: 1})
    stream = redis.Redis.from_url(settings.redis_url.get_secret_value() if settings.redis_url else "",
                                  decode_responses=True)
    entries: Callable[[], Any] = lambda: stream.xrange(f"{settings.app_id}:notifications") or []
    wait_for(lambda: any(bob in f["notification"] and '"tier":"alert"' in f["notification"] for _, f in entries()),
             30, "the notifier to deliver bob's alert")
    delivered = time.monotonic()
    row = browser_page.locator(f"#notifications tbody tr[data-user='{bob}'][data-tier='alert']")
    expect(row).to_be_visible(timeout=5_000)
    assert time.monotonic() - delivered < 5
    expect(row).to_contain_text(f"{LIMIT + 1} / {LIMIT}")
    expect(row).to_contain_text("daily_count over")
    # the heads-up bob had at 80 % of the limit, told apart from the alert
    warned = browser_page.locator(f"#notifications tbody tr[data-user='{bob}'][data-tier='warn'] td.warn")
    expect(warned).to_have_text("daily_count warn", timeout=5_000)
    expect(browser_page.locator(f"#users-over li[data-user='{bob}']")).to_be_visible(timeout=5_000)
    expect(browser_page.locator("#t-latency")).not_to_have_text("–", timeout=5_000)

    shot = Path(os.environ.get("DASHBOARD_SCREENSHOT") or tmp_path / "dashboard.png")
    shot.parent.mkdir(parents=True, exist_ok=True)
    browser_page.screenshot(path=str(shot), full_page=True)
    assert console_errors == []
