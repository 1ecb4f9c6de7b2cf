"""Which (user, day) pairs the dashboard asks the worker about, tick by tick."""

from __future__ import annotations

from pathlib import Path

import pytest

from dashboard.collector import Collector
from paylimit.settings import get_settings


def test_a_pair_with_a_new_transaction_is_asked_again_in_the_seconds_after(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    collector = Collector(get_settings(kafka_bootstrap_servers="localhost:1", redis_url="redis://localhost:1",
                                       home=tmp_path))
    clock = [0.0]
    monkeypatch.setattr("dashboard.collector.time.monotonic", lambda: clock[0])
    pair = ("alice", "2026-12-01")
    collector.active.dirty.add(pair)
    asked = []
    for tick in range(40):  # one a second; the answers are never stored, so never stale either
        clock[0] = float(tick)
        if pair in collector._wanted_users():
            asked.append(tick)
    # at once (the worker may not have counted it yet), then again 1, 2, 4, 8 and 16 s later
    assert asked == [0, 1, 2, 4, 8, 16]


def test_the_usage_cache_and_the_queue_are_bounded(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """PAYLIMIT_DASHBOARD_USERS bounds the usage kept (the latest answered) and the pairs waiting."""
    import asyncio

    collector = Collector(get_settings(kafka_bootstrap_servers="localhost:1", redis_url="redis://localhost:1",
                                       home=tmp_path, dashboard_users=3))

    async def usage(user: str, on: str | None = None) -> tuple[int, dict[str, str]]:
        return 200, {"user_id": user}  # what a worker answers, without one

    monkeypatch.setattr(collector.workers, "usage", usage)
    pairs = [(f"user-{i:03d}", "2026-12-01") for i in range(120)]
    collector.active.dirty.update(pairs)
    asyncio.run(collector._refresh_usage())  # asks the first 50, keeps 3 of the other 70 waiting
    assert list(collector.usage) == pairs[47:50] and len(collector.pending) == 3
