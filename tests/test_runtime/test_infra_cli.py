"""`paylimit infra up / env / status / down` end to end, as a user runs them: the real console
command in a subprocess, with a throwaway PAYLIMIT_HOME. This starts a second broker and Redis
beside the ones the other tests use."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path
from typing import Iterator

import psutil
import pytest
import redis
from confluent_kafka.admin import AdminClient

pytestmark = pytest.mark.integration

PAYLIMIT = str(Path(sys.executable).with_name("paylimit"))


def cli_env(home: Path, path: str | None = None) -> dict[str, str]:
    """The caller's environment without the dev infra's PAYLIMIT_* addresses, so `infra` is used."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PAYLIMIT_")}
    env.update(PAYLIMIT_HOME=str(home), COLUMNS="200", NO_COLOR="1")
    if path is not None:
        env["PATH"] = path
    return env


def paylimit(home: Path, *args: str, path: str | None = None, timeout: float = 150) -> subprocess.CompletedProcess[str]:
    return subprocess.run([PAYLIMIT, *args], env=cli_env(home, path), capture_output=True, text=True, timeout=timeout)


def processes_of(home: Path) -> list[psutil.Process]:
    """Live java / redis-server processes of `home`: its path on their command line, or their
    working directory under it (redis-server rewrites its title and chdirs to --dir)."""
    found = []
    for proc in psutil.process_iter(["pid", "name", "cmdline", "cwd", "status"]):
        cmdline = " ".join(proc.info["cmdline"] or [])
        ours = str(home) in cmdline or str(proc.info["cwd"] or "").startswith(str(home))
        if ours and proc.info["status"] != psutil.STATUS_ZOMBIE and ("java" in cmdline or "redis-server" in cmdline):
            found.append(proc)
    return found


@pytest.fixture
def home(tmp_path: Path) -> Iterator[Path]:
    home = tmp_path / "home"
    yield home
    paylimit(home, "infra", "down")  # whatever a failed assertion left running
    assert processes_of(home) == []


def one_line_error(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode != 0, proc.stdout
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    return lines[0]


def test_up_env_status_up_again_down(home: Path) -> None:
    up = paylimit(home, "infra", "up")
    assert up.returncode == 0, up.stdout + up.stderr
    assert "Kafka" in up.stdout and "Redis" in up.stdout
    started = {p.pid for p in processes_of(home)}
    assert len(started) == 2

    # `eval "$(paylimit infra env)"` gives the processes a shell starts next (pytest, paylimit) the
    # two addresses: printenv is such a child, and sees only exported variables
    shell = subprocess.run(
        ["bash", "-c", f'eval "$({PAYLIMIT} infra env)" && printenv PAYLIMIT_KAFKA_BOOTSTRAP_SERVERS PAYLIMIT_REDIS_URL'],
        env=cli_env(home), capture_output=True, text=True, timeout=60, check=True)
    bootstrap, redis_url = shell.stdout.split()
    env_lines = paylimit(home, "infra", "env").stdout.splitlines()
    assert env_lines == [f"export PAYLIMIT_KAFKA_BOOTSTRAP_SERVERS={bootstrap}", f"export PAYLIMIT_REDIS_URL={redis_url}"]
    assert bootstrap.startswith("127.0.0.1:") and redis_url.startswith("redis://127.0.0.1:")
    assert bootstrap != os.environ.get("PAYLIMIT_KAFKA_BOOTSTRAP_SERVERS")

    # both answer; `up` created paylimit's topics; Redis persists with AOF
    topics = AdminClient({"bootstrap.servers": bootstrap}).list_topics(timeout=15).topics
    assert {"payments.transactions", "payments.alerts", "payments.transactions.dlq"} <= set(topics)
    with redis.Redis.from_url(redis_url) as client:
        assert client.ping()
        assert client.config_get("appendonly") == {"appendonly": "yes"}

    status = paylimit(home, "infra", "status")
    assert status.returncode == 0
    rows = {ln.split()[1]: ln for ln in status.stdout.splitlines() if ln.split()[1:2] in (["kafka"], ["redis"])}
    assert "running" in rows["kafka"] and "running" in rows["redis"], status.stdout

    again = paylimit(home, "infra", "up", timeout=60)
    assert again.returncode == 0, again.stderr
    assert {p.pid for p in processes_of(home)} == started  # nothing restarted, nothing doubled

    down = paylimit(home, "infra", "down", timeout=60)
    assert down.returncode == 0, down.stderr
    assert processes_of(home) == []
    assert not any(psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE for pid in started)
    stopped = paylimit(home, "infra", "status").stdout
    assert "running" not in stopped and "stopped" in stopped
    assert one_line_error(paylimit(home, "infra", "env")).startswith("error: no Kafka")

    # the next `up` reuses the stored ports; one taken by someone else is a one-line error
    redis_port = int(redis_url.rsplit(":", 1)[1].split("/")[0])
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", redis_port))
        squatter.listen()
        line = one_line_error(paylimit(home, "infra", "up", timeout=60))
    assert f"port {redis_port}" in line and "taken" in line
    assert processes_of(home) == []


def test_up_without_java_is_a_one_line_error(home: Path, tmp_path: Path) -> None:
    # a PATH with redis-server (and the basics) but no java
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("redis-server", "mvn"):
        found = shutil.which(tool)
        if found:
            (bin_dir / tool).symlink_to(found)
    line = one_line_error(paylimit(home, "infra", "up", path=str(bin_dir), timeout=60))
    assert line.startswith("error: Java 17+ is needed"), line
    assert processes_of(home) == []  # a failed `up` leaves nothing half-started


def test_up_without_redis_server_is_a_one_line_error(home: Path, tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "java").symlink_to(str(shutil.which("java")))
    line = one_line_error(paylimit(home, "infra", "up", path=str(bin_dir), timeout=60))
    assert "redis-server is not installed" in line
    assert processes_of(home) == []


def _port_refuses(address: str) -> bool:
    host, port = address.rsplit(":", 1)
    with socket.socket() as sock:
        sock.settimeout(2)
        return sock.connect_ex((host, int(port))) != 0


def _row(status: str, service: str) -> list[str]:
    """The cells of the status table's row of `service`."""
    rows = [[c.strip() for c in ln.split("│")[1:-1]] for ln in status.splitlines() if ln.startswith("│")]
    return next(r for r in rows if r[0] == service)


def _under_replicated(home: Path) -> int:
    text = " ".join(paylimit(home, "infra", "status").stdout.split())
    return int(text.split("under-replicated partitions: ")[1].split(";")[0])


def test_a_cluster_of_three_up_stop_one_start_it_down(home: Path) -> None:
    import time

    from confluent_kafka import Consumer
    from confluent_kafka.admin import ConfigResource

    up = paylimit(home, "infra", "up", "--brokers", "3", timeout=240)
    assert up.returncode == 0, up.stdout + up.stderr
    assert len(processes_of(home)) == 4  # three Kafka nodes and Redis

    bootstrap = paylimit(home, "infra", "env").stdout.splitlines()[0].split("=", 1)[1]
    addresses = bootstrap.split(",")
    assert len(set(addresses)) == 3 and all(a.startswith("127.0.0.1:") for a in addresses)
    admin = AdminClient({"bootstrap.servers": bootstrap})
    assert sorted(admin.list_topics(timeout=15).brokers) == [1, 2, 3]

    # paylimit's topics: three replicas, two in sync required; the offsets topic replicated too
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "cluster-test"})
    consumer.subscribe(["payments.transactions"])
    consumer.poll(5)
    consumer.close()
    md = admin.list_topics(timeout=15)
    for topic in ("payments.transactions", "payments.alerts", "__consumer_offsets"):
        assert {len(p.replicas) for p in md.topics[topic].partitions.values()} == {3}, topic
    resource = ConfigResource(ConfigResource.Type.TOPIC, "payments.transactions")
    configs = admin.describe_configs([resource])[resource].result()
    assert configs["min.insync.replicas"].value == "2"

    status = paylimit(home, "infra", "status").stdout
    assert [_row(status, f"kafka-{node}")[1].split()[0] for node in (1, 2, 3)] == ["running"] * 3, status
    assert status.count("active controller") == 1
    assert _under_replicated(home) == 0

    # a stop is a kill: the process is gone and its port refuses connections at once
    before = {p.pid for p in processes_of(home)}
    assert paylimit(home, "infra", "stop-broker", "2").returncode == 0
    assert len(before - {p.pid for p in processes_of(home)}) == 1
    assert _port_refuses(addresses[1])
    status = paylimit(home, "infra", "status").stdout
    assert _row(status, "kafka-2")[1].split()[0] == "stopped", status
    deadline = time.monotonic() + 90  # until the controller fences it (broker session timeout)
    while _under_replicated(home) == 0 and time.monotonic() < deadline:
        time.sleep(1)
    assert _under_replicated(home) > 0
    assert sorted(admin.list_topics(timeout=15).brokers) == [1, 3]

    start = paylimit(home, "infra", "start-broker", "2", timeout=150)
    assert start.returncode == 0, start.stdout + start.stderr
    assert sorted(admin.list_topics(timeout=15).brokers) == [1, 2, 3]
    deadline = time.monotonic() + 90  # it catches up and is back in every in-sync set
    while _under_replicated(home) and time.monotonic() < deadline:
        time.sleep(1)
    assert _under_replicated(home) == 0

    # another size while this one runs: a one-line error; down stops all four
    assert "infra down" in one_line_error(paylimit(home, "infra", "up", "--brokers", "1", timeout=60))
    assert paylimit(home, "infra", "down", timeout=90).returncode == 0
    assert processes_of(home) == []
