"""Every shipped scenario through simulate -> worker -> notifier -> verify, on the real Kafka and Redis."""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Callable

import pytest

from paylimit.runtime.pipeline import Pipeline
from paylimit.settings import Settings
from producer_sim.generator import generate
from producer_sim.publisher import publish_limits
from producer_sim.scenario import load_scenario
from tests.e2e.harness import dead_letters, read_jsonl, simulate, verify
from tests.test_faults.helpers import ready, wait_for

SCENARIOS = sorted(p.name.removesuffix(".yaml") for p in resources.files("producer_sim.scenarios").iterdir()
                   if p.name.endswith(".yaml"))

pytestmark = [pytest.mark.e2e, pytest.mark.integration]


def test_the_scenarios_of_design_section_4_are_shipped() -> None:
    assert {"default", "under_limit", "heavy_users", "midnight_burst", "duplicates", "out_of_order_late",
            "malformed", "timezones_dst", "limit_overrides"} <= set(SCENARIOS)


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_scenario_end_to_end(scenario: str, make_settings: Callable[..., Settings], tmp_path: Path) -> None:
    settings = make_settings()
    # The limit overrides are in Kafka before the worker starts (it reads them before counting);
    # the events flow while it runs, as they do live. (A worker started on a pre-loaded topic is
    # tested in tests/test_faults: the replay, the consumer-skip and the bench catch-up cases.)
    publish_limits(settings, generate(load_scenario(scenario), 11).overrides)
    pipeline = Pipeline(settings)
    pipeline.start()
    try:
        wait_for(lambda: ready(pipeline, pipeline.workers[0]), 120,
                 "the worker to be ready (partitions assigned, tables recovered)")
        run = simulate(settings, tmp_path / "run", scenario, 11)
        pipeline.wait_drained(timeout=180)
        result = verify(settings, run / "expected_alerts.jsonl")
        assert (result["missing"], result["extra"], result["duplicate"], result["wrong_field"]) == (0, 0, 0, 0), result
        assert result["exit_code"] == 0
        assert result["delivered"] == result["expected"] == len(read_jsonl(run / "expected_alerts.jsonl"))

        # every record is accounted for, and every malformed one is in the DLQ with its reason
        sent = read_jsonl(run / "events.jsonl")
        metrics = pipeline.worker_metrics()
        assert metrics["consumed"] == len(sent)
        expected_letters = {(d["partition"], d["offset"]): d["error"]
                            for d in read_jsonl(run / "expected_dead_letters.jsonl")}
        got = {(d.source_partition, d.source_offset): d.error for d in dead_letters(settings)}
        assert got == expected_letters
        assert all(d.reason for d in dead_letters(settings))
    finally:
        pipeline.stop()
