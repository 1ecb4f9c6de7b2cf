"""Case 3: three stream workers on one consumer group; one is killed and one added mid-run (6 partitions)."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import pytest

from paylimit.runtime.pipeline import Pipeline
from paylimit.settings import Settings
from tests.test_faults.helpers import assert_exact, consumed, kill_and_check, simulate_in_background, wait_for

pytestmark = [pytest.mark.faults, pytest.mark.integration]


def test_three_workers_one_killed_one_added(make_settings: Callable[..., Settings], tmp_path: Path) -> None:
    settings = make_settings(partitions=6)
    pipeline = Pipeline(settings)
    pipeline.start(workers=3)
    background = simulate_in_background(settings, tmp_path / "run", "default", 33, "--rate", "90")
    try:
        wait_for(lambda: consumed(pipeline) > 300, 120, "the three workers to be counting")
        victim = pipeline.workers[0]
        kill_and_check(victim)
        added = pipeline.add_worker()
        assert background.running(), "the scenario ended before the rebalance: raise its size or lower --rate"
        background.wait()
        pipeline.wait_drained(timeout=180)
        assert not victim.alive and added.alive and sum(w.alive for w in pipeline.workers) == 3
        assert_exact(settings, background.out)
    finally:
        pipeline.stop()
