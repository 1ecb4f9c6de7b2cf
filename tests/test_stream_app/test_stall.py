"""A write Kafka refuses stalls the worker loudly instead of crash-looping it, on the real broker.

The alerts topic's `max.message.bytes` is set below an alert's size, so the broker refuses the alert
(MSG_SIZE_TOO_LARGE). Before, the worker crashed, and every restart crashed at the same record. Now
it keeps the batch, says every few seconds that the partition is stalled and why (its log, its
`/stats`, the dashboard), tries again, and goes on once the topic takes the alert.
"""

from __future__ import annotations

import json
import urllib.request
from typing import Callable

import pytest
from confluent_kafka.admin import AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource

from paylimit.kafka import LagReader
from paylimit.runtime.pipeline import Pipeline
from paylimit.settings import Settings
from tests.e2e.harness import produce
from tests.test_faults.helpers import wait_for
from bench.hot import record
from tests.test_stream_app.test_hot_user import read_topic

pytestmark = pytest.mark.integration


def set_max_message_bytes(settings: Settings, topic: str, size: int) -> None:
    admin = AdminClient(settings.kafka_client_config())
    resource = ConfigResource(ConfigResource.Type.TOPIC, topic, incremental_configs=[
        ConfigEntry("max.message.bytes", str(size), incremental_operation=AlterConfigOpType.SET)])
    for future in admin.incremental_alter_configs([resource]).values():
        future.result(timeout=30)


def test_an_alert_the_broker_refuses_stalls_the_partition_loudly_then_goes_on(
        make_settings: Callable[..., Settings]) -> None:
    settings = make_settings(daily_limit=2)
    set_max_message_bytes(settings, settings.topic_alerts, 200)  # an alert is ~700 bytes
    records: list[tuple[int, bytes | None, bytes | None]] = [(0, b"u", record(f"u-{i}", "u", i)) for i in range(3)]
    produce(settings, settings.topic_transactions, records + [(0, b"v", record(f"v-{i}", "v", 10 + i)) for i in range(2)])
    pipeline = Pipeline(settings)
    worker = pipeline.add_worker()
    lag = LagReader(settings, settings.app_id, settings.topic_transactions)
    try:
        wait_for(lambda: "0" in pipeline.worker_metrics().get("stalled_partitions", {}), 90, "the stall reported")
        reasons = pipeline.worker_metrics()["stalled_reasons"]
        assert any("refused" in r and "MSG_SIZE_TOO_LARGE" in r for r in reasons), reasons
        # never silent: the log says it again every few seconds, and the worker stays up
        wait_for(lambda: worker.log.read_text().count("STALLED") >= 3, 30, "the stall said three times")
        dashboard = pipeline.start_dashboard()
        with urllib.request.urlopen(f"{dashboard}api/snapshot", timeout=5) as resp:
            snapshot = json.load(resp)
        assert "0" in snapshot["stalled"]["partitions"] and snapshot["stalled"]["reasons"], snapshot["stalled"]
        assert worker.alive and lag.lag() == 5  # nothing committed past the refused alert

        set_max_message_bytes(settings, settings.topic_alerts, 1_048_588)  # the broker's default
        wait_for(lambda: lag.lag() == 0, 90, "the worker going on")
        metrics = pipeline.worker_metrics()
        assert metrics["stalled_partitions"] == {} and metrics["stalls"] >= 1, metrics
        # u's and v's heads-ups at 80 % of 2 (u-1, v-1), and u's alert over it (u-2)
        assert metrics["counted"] == 5 and metrics["alerts_sent"] == 3, metrics
        alerts = [json.loads(v or b"null") for _, v in read_topic(settings, settings.topic_alerts)]
        assert sorted((a["crossing_transaction_id"], a["tier"]) for a in alerts) == [
            ("u-1", "warn"), ("u-2", "alert"), ("v-1", "warn")]
        [alert] = [a for a in alerts if a["tier"] == "alert"]
        assert alert["crossing_transaction_id"] == "u-2" and alert["count"] == 3
        assert worker.alive and worker.restarts == 0
        assert "resumed" in worker.log.read_text()
    finally:
        lag.close()
        pipeline.stop()
