"""Losing a Kafka broker mid-run, on a cluster of three (each broker and controller): kill -9 the
broker leading the most partitions of the transactions topic, or the active controller, while a
scenario runs through two workers and the notifier. Leadership moves, nothing is restarted but the
broker, no alert is lost or repeated, and the restarted broker catches up. Each case prints the
pause: from the kill to the next alert delivered (and to every partition having a leader again).

The module runs its own cluster (`paylimit infra up --brokers 3` under a temporary home).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Iterator

import pytest
from confluent_kafka.admin import AdminClient, ConfigResource

from paylimit.kafka import ClusterWatch
from paylimit.runtime import kafka_broker, local
from paylimit.runtime.pipeline import Pipeline
from paylimit.settings import Settings
from tests.cluster import (first_delivery_after, fresh, local_cluster, port_refuses, wait_fully_replicated,
                           wait_leaders_without)
from tests.test_faults.helpers import assert_exact, consumed, simulate_in_background, wait_for

pytestmark = [pytest.mark.faults, pytest.mark.integration]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    with local_cluster(tmp_path_factory.mktemp("cluster")) as settings:
        yield settings


def _replicas(settings: Settings, topic: str) -> tuple[set[int], str]:
    """(replica counts of the topic's partitions, its min.insync.replicas)."""
    admin = AdminClient(settings.kafka_client_config())
    partitions = admin.list_topics(topic, timeout=15).topics[topic].partitions.values()
    resource = ConfigResource(ConfigResource.Type.TOPIC, topic)
    return {len(p.replicas) for p in partitions}, admin.describe_configs([resource])[resource].result()[
        "min.insync.replicas"].value


@pytest.mark.parametrize("victim", ["busiest leader", "active controller"])
def test_a_broker_killed_mid_run(cluster: Settings, tmp_path: Path, victim: str) -> None:
    settings = fresh(cluster, tmp_path)
    watch = ClusterWatch(settings)
    pipeline = Pipeline(settings)
    pipeline.start(workers=2)
    background = simulate_in_background(settings, tmp_path / "run", "default", 61, "--rate", "60")
    killed: int | None = None
    try:
        wait_for(lambda: consumed(pipeline) > 500 and settings.notifications_log.exists(), 180,
                 "the workers counting and a first alert delivered")
        # faust's changelog is replicated like paylimit's own topics
        assert _replicas(settings, f"{settings.app_id}-days-changelog") == ({3}, "2")
        assert _replicas(settings, settings.topic_transactions) == ({3}, "2")

        if victim == "busiest leader":
            killed = watch.busiest(settings.topic_transactions)
        else:
            killed = kafka_broker.active_controller(local.nodes(cluster))
        assert killed is not None
        moment, began = datetime.now(UTC), time.monotonic()
        local.stop_broker(cluster, killed)
        assert not local.read_state(cluster).broker_running(killed)
        assert port_refuses(local.nodes(cluster)[killed - 1].address)
        assert background.running(), "the scenario ended before the kill: lower --rate"

        moved = wait_leaders_without(watch, settings.topic_transactions, killed) - began
        delivered = first_delivery_after(settings, moment)
        if victim == "active controller":
            controller = kafka_broker.active_controller(local.nodes(cluster))
            assert controller not in (None, killed), controller
        print(f"\nkill -9 of broker {killed} ({victim}): every partition led again after {moved:.1f} s, "
              f"next alert delivered after {(delivered - moment).total_seconds():.1f} s")

        background.wait()
        pipeline.wait_drained(timeout=300)
        assert all(w.alive and w.restarts == 0 for w in pipeline.workers)
        assert pipeline.notifier and pipeline.notifier.alive and pipeline.notifier.restarts == 0
        assert_exact(settings, background.out)

        local.start_broker(cluster, killed)
        wait_fully_replicated(watch)
    finally:
        pipeline.stop()
        if killed is not None:
            local.start_broker(cluster, killed)
