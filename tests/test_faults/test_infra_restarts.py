"""Cases 4, 5 and 7: the Kafka broker, the Redis server, and then everything, stopped and restarted mid-run.

These need a Kafka and a Redis that may be stopped, so the module starts its own local infra
(`paylimit.runtime.local`, a temporary PAYLIMIT_HOME; the session's shared services are never
touched) and stops and restarts it on the same ports, data persisted (Kafka log dirs, Redis AOF).
Each test asserts the outage really happened (process gone, port refusing connections).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any, Callable, Iterator
from urllib.error import URLError

import pytest
import redis
from pydantic import SecretStr

from paylimit.kafka import ensure_topics
from paylimit.runtime import local
from paylimit.runtime.pipeline import Pipeline, ServiceProcess
from paylimit.settings import Settings, get_settings
from producer_sim.generator import generate
from producer_sim.scenario import load_scenario
from tests.test_faults.helpers import (assert_exact, consumed, kill_and_check, simulate_in_background,
                                       wait_for)

pytestmark = [pytest.mark.faults, pytest.mark.integration]


@pytest.fixture(scope="module")
def own_infra(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """A Kafka broker and a Redis server of this module's own, stopped at its end."""
    home = tmp_path_factory.mktemp("own-infra")
    infra = get_settings(home=home, kafka_bootstrap_servers=None, redis_url=None, kafka_heap="512m")
    state = local.up(infra)
    try:
        yield infra.model_copy(update={"kafka_bootstrap_servers": state.kafka_bootstrap,
                                       "redis_url": SecretStr(state.redis_url or "")})
    finally:
        local.down(infra)


@pytest.fixture
def make_own(own_infra: Settings, tmp_path: Path) -> Callable[..., Settings]:
    def make(**overrides: Any) -> Settings:
        tag = uuid.uuid4().hex[:10]
        s = own_infra.isolated(f"faults-{tag}", tmp_path / f"home-{tag}", **overrides)
        ensure_topics(s)
        return s

    return make


def _secret(value: SecretStr | None) -> str:
    return value.get_secret_value() if value else ""


def _port_open(address: str) -> bool:
    host, port = address.replace("redis://", "").split("/")[0].rsplit(":", 1)
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex((host, int(port))) == 0


def _restart_infra(infra: Settings) -> None:
    state = local.up(infra)
    assert state.kafka_bootstrap == infra.kafka_bootstrap_servers, "Kafka came back on another port"
    assert infra.redis_url and state.redis_url == infra.redis_url.get_secret_value(), "Redis came back on another port"




def test_kafka_broker_stopped_and_restarted_mid_run(own_infra: Settings, make_own: Callable[..., Settings],
                                                    tmp_path: Path) -> None:
    settings = make_own()
    pipeline = Pipeline(settings)
    pipeline.start()
    background = simulate_in_background(settings, tmp_path / "run", "default", 41, "--rate", "80")
    try:
        wait_for(lambda: consumed(pipeline) > 300, 120, "the worker to be counting")
        local.stop_kafka(own_infra)
        assert not local.read_state(own_infra).kafka_running
        assert not _port_open(own_infra.kafka_bootstrap_servers or "")  # the broker is really down
        time.sleep(8)  # producer, worker and notifier face the outage
        assert background.running(), "the scenario ended before the outage: lower --rate"
        _restart_infra(own_infra)
        background.wait()
        pipeline.wait_drained(timeout=240)
        assert all(w.alive for w in pipeline.workers) and pipeline.notifier and pipeline.notifier.alive
        assert_exact(settings, background.out)
    finally:
        pipeline.stop()
        _restart_infra(own_infra)


def test_redis_stopped_and_restarted_mid_run(own_infra: Settings, make_own: Callable[..., Settings],
                                             tmp_path: Path) -> None:
    settings = make_own()
    pipeline = Pipeline(settings)
    pipeline.start()
    background = simulate_in_background(settings, tmp_path / "run", "default", 52, "--rate", "80")
    try:
        wait_for(lambda: settings.notifications_log.exists(), 120, "a first notification")
        local.stop_redis(own_infra)
        assert not local.read_state(own_infra).redis_running
        with pytest.raises(redis.ConnectionError):
            redis.Redis.from_url(_secret(own_infra.redis_url), socket_connect_timeout=1).ping()
        time.sleep(8)
        _restart_infra(own_infra)
        background.wait()
        pipeline.wait_drained(timeout=240)
        assert pipeline.notifier and pipeline.notifier.alive and pipeline.notifier.restarts == 0
        notifier_log = pipeline.notifier.log.read_text()
        assert "retrying" in notifier_log, "the notifier never met the outage"
        assert_exact(settings, background.out)
    finally:
        pipeline.stop()
        _restart_infra(own_infra)


def _usage(pipeline: Pipeline, worker: ServiceProcess, user: str, day: str) -> int | None:
    try:
        with urllib.request.urlopen(f"{pipeline.worker_url(worker)}/users/{user}/usage?date={day}",
                                    timeout=2) as resp:
            return int(json.load(resp)["count"])
    except (URLError, OSError, ValueError, KeyError):
        return None


def test_everything_restarted_from_persisted_state_mid_day(own_infra: Settings, make_own: Callable[..., Settings],
                                                           tmp_path: Path) -> None:
    settings = make_own()
    scenario, seed = "default", 73
    users = sorted({r.key for r in generate(load_scenario(scenario), seed).records if r.key})
    pipeline = Pipeline(settings)
    pipeline.start()
    background = simulate_in_background(settings, tmp_path / "run", scenario, seed, "--rate", "80")
    worker, notifier = pipeline.workers[0], pipeline.notifier
    assert notifier is not None
    try:
        wait_for(lambda: consumed(pipeline) > 900, 120, "the first local day to be well under way")
        os.kill(background.proc.pid, signal.SIGSTOP)  # hold the producer: a still picture to compare
        pipeline.wait_drained(timeout=120)
        days = ["2025-01-14", "2025-01-15"]
        before = {(u, d): _usage(pipeline, worker, u, d) for u in users for d in days}
        assert None not in before.values() and sum(v or 0 for v in before.values()) > 0
        delivered_before = settings.notifications_log.read_text().count("\n")

        kill_and_check(worker)
        kill_and_check(notifier)
        local.down(own_infra)
        state = local.read_state(own_infra)
        assert not state.kafka_running and not state.redis_running
        assert not _port_open(own_infra.kafka_bootstrap_servers or "") and not _port_open(_secret(own_infra.redis_url))

        _restart_infra(own_infra)
        worker.restart()
        notifier.restart()
        wait_for(lambda: _usage(pipeline, worker, users[0], days[0]) is not None, 120, "the worker's HTTP server")
        after = {}
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            after = {(u, d): _usage(pipeline, worker, u, d) for u in users for d in days}
            if after == before:
                break
            time.sleep(1)
        assert after == before, {k: (before[k], after.get(k)) for k in before if before[k] != after.get(k)}

        os.kill(background.proc.pid, signal.SIGCONT)
        background.wait()
        pipeline.wait_drained(timeout=240)
        assert settings.notifications_log.read_text().count("\n") >= delivered_before
        assert_exact(settings, background.out)  # no alert repeated, none lost
    finally:
        if background.running():
            os.kill(background.proc.pid, signal.SIGCONT)
        pipeline.stop()
        _restart_infra(own_infra)
