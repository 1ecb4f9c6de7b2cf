"""Any worker answers any user's usage: three workers on the real broker, every worker asked about
every user of a scenario on each of their days, against the oracle's counts."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import pytest
from confluent_kafka.admin import AdminClient

from paylimit.runtime.pipeline import Pipeline
from paylimit.settings import Settings
from tests.e2e.harness import expected_usage, simulate, wrong_usage_answers
from tests.test_faults.helpers import wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.integration]


def members_with_partitions(settings: Settings) -> int:
    """How many members of the workers' group hold partitions of the transactions topic."""
    admin = AdminClient(settings.kafka_client_config())
    group = admin.describe_consumer_groups([settings.app_id])[settings.app_id].result(timeout=10)
    return sum(any(tp.topic == settings.topic_transactions for tp in m.assignment.topic_partitions)
               for m in group.members)


def test_every_worker_answers_every_user_on_every_day(make_settings: Callable[..., Settings], tmp_path: Path) -> None:
    settings = make_settings()
    pipeline = Pipeline(settings)
    try:
        pipeline.start(workers=3)
        run = simulate(settings, tmp_path / "run", "heavy_users", 3, "--users", "40")
        pipeline.wait_drained(timeout=300)
        # the three share the partitions (two each), so most users live on another worker than the one asked
        wait_for(lambda: members_with_partitions(settings) == 3, 120, "each of the three workers to own partitions")
        expected = expected_usage(settings, run)
        assert len(expected) > 60 and sum(n > settings.daily_limit for n in expected.values()) > 10
        urls = [pipeline.worker_url(w) for w in pipeline.workers]
        assert wrong_usage_answers(urls, expected) == []
    finally:
        pipeline.stop()
