"""A local Kafka cluster of three brokers (and a Redis server) of a test module's own, and what the
cluster tests share: fresh topics on it, waiting for leadership and replicas, the next alert."""

from __future__ import annotations

import socket
import time
import uuid
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Iterator

from paylimit.kafka import ClusterWatch, ensure_topics
from paylimit.runtime import local
from paylimit.settings import Settings, get_settings


@contextmanager
def local_cluster(home: Path, brokers: int = 3) -> Iterator[Settings]:
    """`paylimit infra up --brokers 3` under `home`; yields settings on it (replication 3, 2 in
    sync: what `resolve` decides for a local cluster of three), stopped at the end."""
    infra = get_settings(home=home, kafka_bootstrap_servers=None, redis_url=None, kafka_heap="384m")
    local.up(infra, brokers=brokers)
    try:
        yield local.resolve(infra)
    finally:
        local.down(infra)


def fresh(cluster: Settings, home: Path, **overrides: object) -> Settings:
    """Settings with topics, consumer groups and PAYLIMIT_HOME of their own on the cluster."""
    tag = uuid.uuid4().hex[:10]
    s = cluster.isolated(f"cluster-{tag}", home / f"home-{tag}", **overrides)
    return ensure_topics(s)


def port_refuses(address: str) -> bool:
    host, port = address.rsplit(":", 1)
    with socket.socket() as sock:
        sock.settimeout(2)
        return sock.connect_ex((host, int(port))) != 0


def wait_leaders_without(watch: ClusterWatch, topic: str, broker: int, timeout: float = 120) -> float:
    """Until every partition of `topic` has a leader other than `broker`; returns when (monotonic)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            leaders = watch.leaders(topic)
            if leaders and all(leader >= 0 and leader != broker for leader in leaders.values()):
                return time.monotonic()
        except Exception:  # noqa: BLE001 - a metadata request meeting the dead broker; ask again
            pass
        time.sleep(0.2)
    raise AssertionError(f"partitions of {topic} still led by broker {broker} (or by none) after {timeout:.0f}s")


def wait_fully_replicated(watch: ClusterWatch, brokers: int = 3, timeout: float = 180) -> None:
    """Until the cluster lists all its brokers and no partition is under-replicated."""
    deadline = time.monotonic() + timeout
    health = None
    while time.monotonic() < deadline:
        try:
            health = watch.health()
            if len(health.brokers) == brokers and health.under_replicated == 0 and health.offline == 0:
                return
        except Exception:  # noqa: BLE001 - as above
            pass
        time.sleep(0.5)
    raise AssertionError(f"the cluster did not heal within {timeout:.0f}s: {health}")


def first_delivery_after(settings: Settings, moment: datetime, timeout: float = 240) -> datetime:
    """When the first alert delivered after `moment` was delivered."""
    from paylimit.notification_record import read_delivered

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        later = [n.delivered_at for n in read_delivered(settings) if n.delivered_at > moment]
        if later:
            return min(later)
        time.sleep(0.1)
    raise AssertionError(f"no alert delivered within {timeout:.0f}s of {moment}")


def longest_silence(settings: Settings, moment: datetime) -> float:
    """The longest time without an alert delivered from `moment` on (seconds): the pause users saw
    (an alert already on its way at the kill makes the next delivery after it say little)."""
    from paylimit.notification_record import read_delivered

    times = sorted([moment, *(n.delivered_at for n in read_delivered(settings) if n.delivered_at > moment)])
    return max((b - a).total_seconds() for a, b in zip(times, times[1:])) if len(times) > 1 else 0.0
