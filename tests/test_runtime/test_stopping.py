"""Stopping what runs: `paylimit demo --keep-running` lists everything it leaves and `paylimit infra
down` stops all of it; every service stops within seconds of SIGTERM, even with Kafka and Redis
gone. Real processes and signals, on a Kafka broker and Redis server of each test's own (they are
stopped here, so never the session's)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

import pytest
from pydantic import SecretStr

from paylimit.kafka import ensure_topics
from paylimit.runtime import local, processes
from paylimit.runtime.pipeline import Pipeline
from paylimit.settings import get_settings
from producer_sim.generator import generate
from producer_sim.publisher import Publisher
from producer_sim.scenario import load_scenario
from tests.test_runtime.test_infra_cli import cli_env, processes_of

pytestmark = pytest.mark.integration

PAYLIMIT = str(Path(sys.executable).with_name("paylimit"))


def paylimit(home: Path, *args: str, timeout: float, extra: dict[str, str] | None = None
             ) -> subprocess.CompletedProcess[str]:
    # the dashboard on a free port: 6067 is every other demo's on this machine
    env = {**cli_env(home), "PAYLIMIT_DASHBOARD_PORT": "0", "COLUMNS": "300", **(extra or {})}
    return subprocess.run([PAYLIMIT, *args], env=env, capture_output=True, text=True, timeout=timeout)


def running(pid: int | None) -> bool:
    return processes.alive(pid)


@pytest.fixture
def home(tmp_path: Path) -> Iterator[Path]:
    home = tmp_path / "home"
    yield home
    local.down(get_settings(home=home))  # whatever a failed assertion left


@pytest.mark.e2e
def test_demo_keep_running_lists_everything_and_infra_down_stops_it(home: Path) -> None:
    """It used to list one worker of two, and the `paylimit infra down` it suggested left both
    workers, the notifier and the dashboard running against a stopped broker."""
    demo = paylimit(home, "demo", "--keep-running", "--workers", "2", "--users", "20", "--duration", "5",
                    timeout=600)
    assert demo.returncode == 0, demo.stdout[-3000:] + demo.stderr
    assert "`paylimit infra down` stops all of it" in demo.stdout
    listed = {name: int(pid) for name, pid in
              re.findall(r"^\s*(worker-\d|notifier|dashboard|kafka|redis)\s+(\d+)\s+\S+\s*$", demo.stdout, re.M)}
    assert set(listed) == {"worker-1", "worker-2", "notifier", "dashboard", "kafka", "redis"}, demo.stdout[-2000:]
    assert all(running(pid) for pid in listed.values()), listed

    status = paylimit(home, "infra", "status", timeout=60).stdout
    for name, pid in listed.items():
        assert re.search(rf"{name}\s.*running.*\s{pid}\s", status), status

    # the verification again, as the demo prints it (it once named the run's home only, not its record)
    again = re.search(r"again\s+PAYLIMIT_APP_ID=(\S+) paylimit verify --expected\s+(\S+)", demo.stdout)
    assert again, demo.stdout[-2000:]
    verified = paylimit(home, "verify", "--expected", again[2], timeout=120, extra={"PAYLIMIT_APP_ID": again[1]})
    assert verified.returncode == 0 and "NOT clean" not in verified.stdout, verified.stdout[-2000:] + verified.stderr

    down = paylimit(home, "infra", "down", timeout=120)
    assert down.returncode == 0, down.stderr
    assert [pid for pid in listed.values() if running(pid)] == []
    assert processes_of(home) == []  # Kafka and Redis too
    assert down.stdout.strip() == "worker-1, worker-2, notifier, dashboard, Kafka and Redis stopped."


@pytest.mark.faults
def test_every_service_stops_within_seconds_of_sigterm_with_kafka_and_redis_gone(home: Path) -> None:
    """The workers used to ignore SIGTERM for over 45 s once the broker had gone: faust's stop waits
    for its consumer thread (60 s), and the worker's last state write for the broker."""
    infra = get_settings(home=home, kafka_bootstrap_servers=None, redis_url=None, kafka_heap="512m")
    state = local.up(infra)
    s = infra.model_copy(update={"kafka_bootstrap_servers": state.kafka_bootstrap, "redis_url": SecretStr(state.redis_url or ""),
                                 "home": home / "run", "web_port": 0, "dashboard_port": 0})
    s = ensure_topics(s)
    pipeline = Pipeline(s)
    try:
        pipeline.start(2)
        pipeline.start_dashboard()
        plan = generate(load_scenario("default"), 1, users=20)
        assert not Publisher(s, plan.records).run().failed
        pipeline.wait_drained(timeout=180)  # the workers hold state, and have counted into it
        services = {svc.name: svc.pid for svc in pipeline.services()}
        dead = {svc.name: processes.tail(svc.log) for svc in pipeline.services() if not svc.alive}
        assert len(services) == 4 and dead == {}

        local.stop_kafka(infra)
        local.stop_redis(infra)
        assert not local.read_state(infra).kafka_running and not local.read_state(infra).redis_running

        began = time.monotonic()
        for pid in services.values():
            os.kill(pid, signal.SIGTERM)
        deadline = began + 20  # 5 s of grace, and a loaded machine
        while time.monotonic() < deadline and any(running(pid) for pid in services.values() if pid):
            time.sleep(0.1)  # (a stopped child is a zombie until pipeline.stop() reaps it: not running)
        late = {name: pid for name, pid in services.items() if pid and running(pid)}
        assert late == {}, f"still running {time.monotonic() - began:.0f} s after SIGTERM: {late}"
    finally:
        pipeline.stop()
        local.down(infra)
