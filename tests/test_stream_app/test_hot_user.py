"""One user with 30,000 succeeded transactions in a day, among others on the same partition, on the
real broker: everyone counted, the alerts right, the state bounded, the worker never down.

Before, the day value held every counted id as a 36-character string: at about 23,000 it passed
the broker's 1 MB message limit, the changelog write failed with MSG_SIZE_TOO_LARGE, the worker
crashed (and every restart crashed at the same place), and the users after it on the partition
were never counted. The test also prints each phase's records per second (spread users, then the
hot user), which was about 4,900/s against 13,900/s before; it asserts no rate (`python -m bench.hot`
measures it, for 100,000 by default).
"""

from __future__ import annotations

import json
import urllib.request
from datetime import timedelta
from typing import Any, Callable

import pytest
from confluent_kafka.admin import AdminClient, NewTopic

from bench.hot import DAY, follow, hot_id, hot_load, phase_rates, record
from paylimit.kafka import LagReader, read_to_end
from paylimit.runtime.pipeline import Pipeline
from paylimit.settings import Settings
from stream_app.state import VALUE_MAX, decode_day
from tests.e2e.harness import produce
from tests.test_faults.helpers import wait_for

pytestmark = pytest.mark.integration

HOT = 30_000
AFTER_USERS = 150

def read_topic(settings: Settings, topic: str) -> list[tuple[bytes | None, bytes | None]]:
    """Every record of `topic`'s partitions, to their ends now, partition by partition."""
    records, _ = read_to_end(settings, topic, None, f"{settings.app_id}-check")
    return [(key, value) for _, key, value in sorted(records, key=lambda record: record[0])]


def usage(pipeline: Pipeline, user: str) -> int:
    with urllib.request.urlopen(f"{pipeline.worker_url()}/users/{user}/usage?date=2026-03-10", timeout=5) as resp:
        return int(json.load(resp)["count"])


def test_a_user_with_30000_transactions_in_a_day_is_counted_with_everyone_else(
        make_settings: Callable[..., Settings], record_property: Callable[[str, Any], None]) -> None:
    settings = make_settings()
    load = hot_load(HOT, after_users=AFTER_USERS)  # all on partition 0: spread users, the hot one, others
    produce(settings, settings.topic_transactions, load.records)
    pipeline = Pipeline(settings)
    worker = pipeline.add_worker()
    lag = LagReader(settings, settings.app_id, settings.topic_transactions)
    try:
        seen = follow(pipeline, len(load.records), timeout=240)  # before: the worker crashed in the hot user's
        wait_for(lambda: lag.lag() == 0, 60, "the worker's committed offsets")
        metrics = pipeline.worker_metrics()
        assert worker.alive and worker.restarts == 0
        assert metrics["counted"] == len(load.records) - 3 and metrics["duplicates"] == 3 == load.duplicates, metrics
        assert metrics["stalled_partitions"] == {} and metrics["stalls"] == 0, metrics

        every = [json.loads(v or b"null") for _, v in read_topic(settings, settings.topic_alerts)]
        # daily_count's heads-ups (at 8 of 10: every user) besides its alerts, each sent once but the hot one's
        assert metrics["alerts_sent"] == len({a["alert_id"] for a in every}) == 3_000 + 2 * (1 + AFTER_USERS)
        alerts = [a for a in every if a["tier"] == "alert"]
        by_user = {a["user_id"]: a for a in alerts}
        assert metrics["alerts_resent"] == 1 and len(every) == metrics["alerts_sent"] + 1
        assert len(by_user) == 1 + AFTER_USERS and len(alerts) == 2 + AFTER_USERS  # the hot one re-sent
        hot = [hot_id(i) for i in range(11)]
        assert (by_user["hot"]["count"], by_user["hot"]["crossing_transaction_id"],
                by_user["hot"]["transaction_ids"]) == (11, hot[10], hot)
        assert all(by_user[f"after-{u}"]["crossing_transaction_id"] == f"after-{u}-10" for u in range(AFTER_USERS))

        changelog = read_topic(settings, f"{settings.app_id}-days-changelog")
        assert max(len(v or b"") for _, v in changelog) < VALUE_MAX
        [last_hot] = [v for k, v in changelog if k == b'"hot|2026-03-10"'][-1:]
        assert decode_day("hot|2026-03-10", last_hot or b"").count == HOT
        wait_for(lambda: usage(pipeline, "hot") == HOT, 30, "the hot user's usage")
        assert (usage(pipeline, "spread-7"), usage(pipeline, "after-7")) == (10, 11)
    finally:
        lag.close()
        pipeline.stop()
    rates = phase_rates(seen, load)
    record_property("rates", rates)
    print(f"records per second: {rates}")


def test_a_worker_upgraded_in_place_goes_on_from_the_state_the_version_before_wrote(
        make_settings: Callable[..., Settings]) -> None:
    """The changelog as the version before left it at the crash (every counted id in the day value,
    15,000 of them, and the partition's progress): the new worker restores it, counts on, and takes
    any of the old ids for the duplicate it is."""
    settings = make_settings()
    old = [hot_id(i) for i in range(15_000)]
    end = (DAY + timedelta(days=1)).timestamp()
    value = {"u": "hot", "d": "2026-03-10", "z": "UTC", "p": 0, "e": end, "f": DAY.isoformat(),
             "i": old, "x": old[10], "l": 10, "t": False}
    changelog = f"{settings.app_id}-days-changelog"
    admin = AdminClient(settings.kafka_client_config())
    for future in admin.create_topics([NewTopic(changelog, settings.partitions, settings.replication_factor,
                                                config={"cleanup.policy": "compact"})]).values():
        future.result()
    produce(settings, changelog, [(0, b'"hot|2026-03-10"', json.dumps(value).encode()),
                                  (0, b'"__progress__|0"', json.dumps({"o": len(old), "t": DAY.timestamp() + 14_999}).encode())])
    assert len(json.dumps(value)) < 1_000_000  # as the version before could still write it
    new = [hot_id(i) for i in range(15_000, 15_100)]
    records: list[tuple[int, bytes | None, bytes | None]] = [
        (0, b"hot", record(tid, "hot", n)) for n, tid in enumerate(old)]  # counted before
    records += [(0, b"hot", record(tid, "hot", 15_000 + n)) for n, tid in enumerate(new)]
    records += [(0, b"hot", record(old[i], "hot", i)) for i in (3, 10, 14_990)]  # duplicates of old ids
    records += [(0, b"w", record(f"w-{i}", "w", 16_000 + i)) for i in range(11)]
    produce(settings, settings.topic_transactions, records)

    pipeline = Pipeline(settings)
    pipeline.add_worker()
    lag = LagReader(settings, settings.app_id, settings.topic_transactions)
    try:
        wait_for(lambda: lag.lag() == 0, 120, "the worker counting on")
        metrics = pipeline.worker_metrics()
        assert metrics["replayed"] == 0 and metrics["consumed"] == 100 + 3 + 11, metrics  # from the stored offset
        assert metrics["counted"] == 111 and metrics["duplicates"] == 3, metrics
        # w's heads-up and alert; none for hot, whose day went over before (in the format before rules)
        assert metrics["alerts_sent"] == 2 and metrics["alerts_resent"] == 1, metrics
        every = [json.loads(v or b"null") for _, v in read_topic(settings, settings.topic_alerts)]
        assert sorted((a["user_id"], a["tier"]) for a in every) == [("hot", "alert"), ("w", "alert"), ("w", "warn")]
        alerts = {a["user_id"]: a for a in every if a["tier"] == "alert"}
        assert (alerts["hot"]["count"], alerts["hot"]["transaction_ids"]) == (11, old[:11])  # re-sent as it was
        assert alerts["w"]["crossing_transaction_id"] == "w-10"
        wait_for(lambda: usage(pipeline, "hot") == 15_100, 30, "the hot user's usage")
    finally:
        lag.close()
        pipeline.stop()
