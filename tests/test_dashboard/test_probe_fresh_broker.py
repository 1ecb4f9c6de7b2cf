"""The dashboard's Kafka probe on a broker that has just started: it must not crash the process.

A fresh broker creates `__consumer_offsets` on the first group request and answers NOT_COORDINATOR
while it loads; an AdminClient's list_consumer_group_offsets then segfaults in librdkafka (the
dashboard's exit 139 in the compose stack). The probe runs in a child process, so a crash shows as
its exit status instead of killing the test run. A broker of its own: the session's broker created
`__consumer_offsets` long ago. Thirty dashboards' groups at once (their coordinators on other
partitions): one alone meets the NOT_COORDINATOR window in about half of the runs, thirty in each.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from paylimit.kafka import ensure_topics, wait_for_broker
from paylimit.runtime import kafka_broker, processes
from paylimit.settings import get_settings

PROBE = """
import sys, threading, time
from confluent_kafka import KafkaException
from dashboard.offsets import KafkaProbe
from paylimit.errors import InfraError
from paylimit.settings import get_settings

def look(n: int) -> None:
    # a dashboard of its own (other groups: another coordinator partition each), once it starts
    probe = KafkaProbe(get_settings(kafka_bootstrap_servers=sys.argv[1], app_id=f"paylimit-{n}"))
    probe.start()
    deadline = time.monotonic() + 120
    while True:  # until both groups' lag is read (their coordinators ready), as the collector does
        try:
            print(probe.offsets(), flush=True)
            break
        except (KafkaException, InfraError) as exc:
            assert time.monotonic() < deadline, exc
            time.sleep(0.05)
    probe.stop()

threads = [threading.Thread(target=look, args=(n,)) for n in range(30)]
for t in threads:
    t.start()
for t in threads:
    t.join()
"""


def test_the_probe_survives_a_broker_whose_group_coordinator_is_loading(tmp_path: Path) -> None:
    settings = get_settings(home=tmp_path / "home")
    kafka_broker.ensure_jars(settings, print)
    (node,) = kafka_broker.prepare(settings, tmp_path / "broker")
    pid, bootstrap = kafka_broker.start(settings, node), node.address
    try:
        fresh = settings.model_copy(update={"kafka_bootstrap_servers": bootstrap})
        wait_for_broker(fresh, timeout=120)
        ensure_topics(fresh, timeout=60)
        proc = subprocess.run([sys.executable, "-c", PROBE, bootstrap], capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, f"exit {proc.returncode}: {proc.stdout[-2000:]}{proc.stderr[-2000:]}"
        assert proc.stdout.count("Offsets(produced=0, worker_lag=0, notifier_lag=0)") == 30, proc.stdout + proc.stderr
    finally:
        processes.stop(pid)
