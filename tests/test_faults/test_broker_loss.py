"""Losing a Kafka broker mid-run, on a cluster of three (each broker and controller): kill -9 the
broker leading the most partitions of the transactions topic, or the active controller, while a
scenario runs through two workers and the notifier. Leadership moves, nothing is restarted but the
broker, no alert is lost or repeated, and the restarted broker catches up. Each case prints the
pause: from the kill to the next alert delivered (and to every partition having a leader again).
And scale-out on the cluster: three workers, each asked about every user on each of their days,
against the oracle, before and after a broker is killed.

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
from tests.cluster import (first_delivery_after, fresh, local_cluster, longest_silence, port_refuses,
                           wait_fully_replicated, wait_leaders_without)
from tests.e2e.harness import expected_usage, simulate, wrong_usage_answers
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
        background.wait()
        pipeline.wait_drained(timeout=300)
        print(f"\nkill -9 of broker {killed} ({victim}): every partition led again after {moved:.1f} s, "
              f"next alert delivered after {(delivered - moment).total_seconds():.1f} s, longest wait between "
              f"deliveries after the kill {longest_silence(settings, moment):.1f} s")
        assert all(w.alive and w.restarts == 0 for w in pipeline.workers)
        assert pipeline.notifier and pipeline.notifier.alive and pipeline.notifier.restarts == 0
        assert_exact(settings, background.out)

        local.start_broker(cluster, killed)
        wait_fully_replicated(watch)
    finally:
        pipeline.stop()
        if killed is not None:
            local.start_broker(cluster, killed)


def test_three_workers_answer_every_user_before_and_after_a_broker_is_killed(cluster: Settings,
                                                                              tmp_path: Path) -> None:
    settings = fresh(cluster, tmp_path)
    watch = ClusterWatch(settings)
    pipeline = Pipeline(settings)
    killed: int | None = None
    try:
        pipeline.start(workers=3)
        run = simulate(settings, tmp_path / "run", "heavy_users", 5, "--users", "40")
        pipeline.wait_drained(timeout=300)
        expected = expected_usage(settings, run)
        assert len(expected) > 60 and sum(n > settings.daily_limit for n in expected.values()) > 10
        urls = [pipeline.worker_url(w) for w in pipeline.workers]
        assert wrong_usage_answers(urls, expected, timeout=180) == []

        killed = watch.busiest(settings.topic_transactions)
        local.stop_broker(cluster, killed)
        wait_leaders_without(watch, settings.topic_transactions, killed)
        assert all(w.alive for w in pipeline.workers)
        assert wrong_usage_answers(urls, expected, timeout=180) == []

        local.start_broker(cluster, killed)
        wait_fully_replicated(watch)
        assert all(w.alive and w.restarts == 0 for w in pipeline.workers)
    finally:
        pipeline.stop()
        if killed is not None:
            local.start_broker(cluster, killed)


def test_the_lag_is_read_through_a_broker_loss(cluster: Settings, tmp_path: Path) -> None:
    """The demo and the pipeline read the workers' lag all along; a broker killed, fenced and started
    again must not end that (librdkafka fails a request to a broker leaving the cluster with
    _DESTROY_BROKER, which ended the demo on a cluster)."""
    from paylimit.kafka import LagReader

    settings = fresh(cluster, tmp_path)
    watch = ClusterWatch(settings)
    reader = LagReader(settings, settings.app_id, settings.topic_transactions)
    killed = watch.busiest(settings.topic_transactions)
    try:
        assert reader.lag() == 0
        local.stop_broker(cluster, killed)
        deadline = time.monotonic() + 30  # past the broker session timeout: fenced, dropped from metadata
        while time.monotonic() < deadline:
            assert reader.lag() == 0
        local.start_broker(cluster, killed)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            assert reader.lag() == 0
    finally:
        reader.close()
        local.start_broker(cluster, killed)
        wait_fully_replicated(watch)
