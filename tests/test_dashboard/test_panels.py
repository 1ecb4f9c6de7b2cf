"""The dashboard's user panels with two workers: every user's count comes from the worker that owns
the user's partition, whichever worker the dashboard asks, so the panels match the oracle."""

from __future__ import annotations

import json
import time
import urllib.request
from pathlib import Path
from typing import Any, Callable

import pytest

from paylimit.runtime.pipeline import Pipeline
from paylimit.settings import Settings
from tests.e2e.harness import expected_usage, simulate

pytestmark = [pytest.mark.e2e, pytest.mark.integration]


def panels(usage: dict[tuple[str, str], int], day: str, limit: int) -> dict[str, list[tuple[str, int]]]:
    """The oracle's top users, users within 20 % of their limit and users over it on `day`."""
    active = sorted(((u, n) for (u, d), n in usage.items() if d == day and n > 0), key=lambda p: (-p[1], p[0]))
    return {"top": active[:10], "near": [p for p in active if p[1] <= limit and limit - p[1] <= 0.2 * limit],
            "over": [p for p in active if p[1] > limit]}


def shown(snapshot: dict[str, Any]) -> dict[str, list[tuple[str, int]]]:
    return {name: [(u["user_id"], u["count"]) for u in snapshot["users"][name]] for name in ("top", "near", "over")}


def test_the_user_panels_are_right_with_two_workers(make_settings: Callable[..., Settings], tmp_path: Path) -> None:
    settings = make_settings(dashboard_port=0)
    pipeline = Pipeline(settings)
    try:
        pipeline.start(workers=2)
        run = simulate(settings, tmp_path / "run", "heavy_users", 3, "--users", "40")
        pipeline.wait_drained(timeout=300)
        url = pipeline.start_dashboard()  # after the drain: every answer it gets is final
        usage = expected_usage(settings, run)
        days = sorted({d for _, d in usage})
        expected = {day: panels(usage, day, settings.daily_limit) for day in days}
        assert all(len(e["over"]) > 5 for e in expected.values()) and all(len(e["over"]) < 50 for e in expected.values())
        got: dict[str, Any] = {}
        deadline = time.monotonic() + 120  # the dashboard asks about 50 (user, day) pairs a second
        while time.monotonic() < deadline:
            for day in days:
                with urllib.request.urlopen(f"{url}api/snapshot?day={day}", timeout=5) as resp:
                    got[day] = shown(json.load(resp))
            if got == expected:
                break
            time.sleep(0.5)
        assert got == expected
    finally:
        pipeline.stop()
