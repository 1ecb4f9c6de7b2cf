"""The docker-compose demo, run for real (marker `docker`): the README's "With Docker" commands.

On a Docker engine (the running one, else `dockerd` started here as root and stopped at the end):
build the stand-in base images (`paylimit.runtime.images`: no registry answers here), build
paylimit's image from the Dockerfile, `docker compose up --wait` until every service is healthy,
run the simulator profile, `paylimit notifications` and `paylimit verify` in the notifier container
(clean), read the dashboard's snapshot from the host, crash the worker mid-run (SIGKILL of its
process: compose's restart policy brings it back, as the same static group member) and verify
again, stop every service with SIGTERM (none needs the SIGKILL that follows 10 s later), and
`docker compose down -v` leaves nothing behind.

What is stood in for (docker/compose.local.yml, the only change to docker-compose.yml): the images
`apache/kafka` (Kafka's jars from Maven Central on Debian's JRE, following the image's environment
contract for the variables the compose file sets; not its SSL/SASL secrets, file input, JMX or
log4j variables), `redis:7` (Debian's redis-server 7) and `python:3.11-slim` (Debian's Python 3.11).
Everything else is the repository's own: Dockerfile, docker-compose.yml, the paylimit commands.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
from confluent_kafka.admin import AdminClient

from paylimit.runtime import images
from paylimit.runtime.processes import free_port
from paylimit.settings import get_settings
from producer_sim.scenario import scenario_path

pytestmark = [pytest.mark.docker, pytest.mark.timeout(1800)]

ROOT = Path(__file__).resolve().parents[1]
PROJECT = "paylimit-compose-test"
SERVICES = ("kafka", "redis", "worker", "notifier", "notifier-2", "dashboard")
CRASHES: dict[str, int] = {}  # restarts of each service (by compose's policy) while the stack came up
DASHBOARD_ERRORS: dict[str, str | None] = {}  # the dashboard's snapshot after the first run


def run(argv: list[str], timeout: float = 600, env: dict[str, str] | None = None,
        stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=env, input=stdin)


def engine_answers() -> bool:
    try:
        return run(["docker", "info"], timeout=20).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def wait_until(what: str, predicate: Callable[[], Any], timeout: float, detail: Callable[[], Any] = str) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        assert time.monotonic() < deadline, f"timed out after {timeout:.0f} s waiting for {what} {detail()}"
        time.sleep(1)
    return value


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """A Docker engine: the one running, else dockerd started here (as root), stopped at the end."""
    if shutil.which("docker") and engine_answers():
        yield
        return
    if not (shutil.which("docker") and shutil.which("dockerd") and os.geteuid() == 0):
        pytest.skip("no Docker engine: none answers, and dockerd (Debian's docker.io) can be started only as root")
    log = tmp_path_factory.mktemp("dockerd") / "dockerd.log"
    with open(log, "wb") as out:
        daemon = subprocess.Popen(["dockerd"], stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_until("dockerd to answer", lambda: daemon.poll() is not None or engine_answers(), 90)
        assert daemon.poll() is None, f"dockerd exited: {log.read_text()[-2000:]}"
        yield
    finally:
        daemon.terminate()
        daemon.wait(60)


class Stack:
    """`docker compose` on docker-compose.yml + docker/compose.local.yml, on free host ports."""

    def __init__(self) -> None:
        self.ports = {name: free_port() for name in ("HOST_KAFKA_PORT", "HOST_WORKER_PORT", "HOST_DASHBOARD_PORT")}
        self.env = {**os.environ, **{k: str(v) for k, v in self.ports.items()}}
        self.last_verdict: dict[str, Any] = {}

    def compose(self, *args: str, timeout: float = 600, check: bool = True,
                stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        proc = run(["docker", "compose", "-p", PROJECT, "-f", str(ROOT / "docker-compose.yml"),
                    "-f", str(images.OVERRIDE), *args], timeout=timeout, env=self.env, stdin=stdin)
        assert not check or proc.returncode == 0, f"docker compose {' '.join(args)}: {proc.stdout[-3000:]}{proc.stderr[-3000:]}"
        return proc

    def popen(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(["docker", "compose", "-p", PROJECT, "-f", str(ROOT / "docker-compose.yml"),
                                 "-f", str(images.OVERRIDE), *args], stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, env=self.env)

    def paylimit(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """A paylimit command inside the notifier container (`docker compose exec notifier paylimit ...`)."""
        return self.compose("exec", "-T", "notifier", "paylimit", *args, check=check, timeout=120)

    def containers(self) -> dict[str, dict[str, Any]]:
        ids = self.compose("ps", "-a", "-q").stdout.split()
        if not ids:
            return {}
        found = json.loads(run(["docker", "inspect", *ids]).stdout)
        return {c["Config"]["Labels"]["com.docker.compose.service"]: c for c in found}

    def http_json(self, port_name: str, path: str) -> Any:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.ports[port_name]}{path}", timeout=10) as resp:
            return json.loads(resp.read())

    def verify(self, expected: str) -> dict[str, Any] | None:
        """`paylimit verify --json` in the notifier container: its verdict if clean, else None."""
        proc = self.paylimit("verify", "--expected", expected, "--json", check=False)
        assert proc.returncode in (0, 1), proc.stdout + proc.stderr  # 1: not clean (yet)
        self.last_verdict = json.loads(proc.stdout)
        return self.last_verdict if self.last_verdict["clean"] else None

    def worker_member(self) -> dict[str, Any] | None:
        """The worker's member of the `paylimit` consumer group: its ids and partitions of the input topic."""
        admin = AdminClient({"bootstrap.servers": f"127.0.0.1:{self.ports['HOST_KAFKA_PORT']}"})
        group = admin.describe_consumer_groups(["paylimit"])["paylimit"].result(timeout=20)
        members = [{"member_id": m.member_id, "instance": m.group_instance_id,
                    "partitions": sorted(tp.partition for tp in m.assignment.topic_partitions
                                         if tp.topic == "payments.transactions")} for m in group.members]
        return members[0] if len(members) == 1 else None

    def logs(self) -> str:
        """The services' last lines and their states (health checks included), for a failure's post-mortem."""
        states = "\n".join(f"{name}: {json.dumps(c['State'])}" for name, c in self.containers().items())
        return self.compose("logs", "--no-color", "--tail", "60", check=False).stdout + "\n" + states


@pytest.fixture(scope="module")
def stack(engine: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    kafka = images.kafka_version_of(ROOT / "docker-compose.yml")
    images.ensure_standins(get_settings().model_copy(update={"kafka_version": kafka}))
    s = Stack()
    if run(["docker", "compose", "version"]).returncode != 0:
        pytest.fail("`docker compose` (the Compose v2 plugin) is missing: `make system-deps` builds it as root")
    s.compose("down", "-v", "--remove-orphans")  # what a run killed half-way left behind
    try:
        yield s
    finally:
        log = tmp_path_factory.getbasetemp() / "compose.log"
        log.write_text(s.logs())
        print(f"the services' logs: {log}")
        s.compose("down", "-v", "--remove-orphans", check=False)


def test_compose_demo_end_to_end(stack: Stack) -> None:
    # the README's commands: build from the Dockerfile, up until every service is healthy
    stack.compose("build")
    # --wait gives up on a service that crashes while starting; compose would restart it, so the stack
    # is judged by every service being healthy within the deadline, and the crashes apart (below)
    stack.compose("up", "-d", "--wait", "--wait-timeout", "300", timeout=420, check=False)
    running = wait_until("every service to be healthy", lambda: (c := stack.containers()) and all(
        c[name]["State"].get("Health", {}).get("Status") == "healthy" for name in SERVICES) and c, 300,
        lambda: {name: c["State"].get("Health", {}).get("Status") for name, c in stack.containers().items()})
    for name in SERVICES:
        assert running[name]["Config"]["User"] not in ("", "root", "0"), f"{name} runs as root"
        CRASHES[name] = running[name]["RestartCount"]

    stack.compose("--profile", "simulate", "run", "--rm", "simulator", timeout=300)
    verdict = wait_until("verify to be clean", lambda: stack.verify("/data/run/expected_alerts.jsonl"), 180,
                         lambda: stack.last_verdict)
    assert verdict["expected"] > 0 and verdict["delivered"] == verdict["expected"]
    shown = stack.paylimit("notifications", "--json").stdout.splitlines()
    assert len(shown) == verdict["expected"]

    # the dashboard, from the host: its snapshot reads the worker and the notifications
    snapshot = wait_until("the dashboard to see the run", lambda: (
        (snap := stack.http_json("HOST_DASHBOARD_PORT", "/api/snapshot"))["totals"]["alerts_sent"] == verdict["expected"]
        and snap["notifications"] and snap), 60)
    assert snapshot["app_id"] == "paylimit"
    assert {k: v for k, v in snapshot["errors"].items() if k != "usage"} == {"workers": None, "kafka": None, "redis": None}
    DASHBOARD_ERRORS.update(snapshot["errors"])

    # a second scenario (other users), rate-capped so the worker is mid-run when it crashes; moved to
    # days after the first run's (the worker dead-letters what is older than its retention by then)
    later = scenario_path("heavy_users").read_text().replace("2024-09-02", "2025-03-03")  # its start and whole days
    assert "2024-" not in later
    stack.compose("exec", "-T", "notifier", "sh", "-c", "cat > /data/later.yaml", stdin=later)
    before = wait_until("the worker's group member", stack.worker_member, 60)
    assert before["instance"] == "worker" and before["partitions"] == list(range(6))
    consumed = stack.http_json("HOST_WORKER_PORT", "/stats")["consumed"]
    sim = stack.popen("--profile", "simulate", "run", "--rm", "simulator", "simulate", "--scenario", "/data/later.yaml",
                      "--seed", "2", "--rate", "60", "--out", "/data/run2")
    try:
        wait_until("the worker to count the second run",
                   lambda: stack.http_json("HOST_WORKER_PORT", "/stats")["consumed"] > consumed + 50, 120)
        assert sim.poll() is None, "the simulator finished before the crash"
        # a crash, not `docker kill`: Docker treats a kill as a manual stop and does not restart the container
        worker = stack.containers()["worker"]
        crash = run(["docker", "run", "--rm", "--pid=host", "paylimit-local/python:3.11", "python", "-c",
                     f"import os; os.kill({worker['State']['Pid']}, 9)"])
        assert crash.returncode == 0, crash.stderr
        restarted = wait_until("compose to restart the worker", lambda: (
            (w := stack.containers()["worker"])["RestartCount"] > worker["RestartCount"]
            and w["State"]["Health"]["Status"] == "healthy" and w), 180)
        assert restarted["State"]["Pid"] != worker["State"]["Pid"]
        out, _ = sim.communicate(timeout=300)
        assert sim.returncode == 0, out[-3000:]
    finally:
        if sim.poll() is None:
            sim.kill()
    after = wait_until("the restarted worker to rejoin its group", lambda: (
        (m := stack.worker_member()) and m["member_id"] != before["member_id"] and m), 120)
    assert after["instance"] == "worker" and after["partitions"] == list(range(6))  # its partitions, back

    first = {json.loads(ln)["alert_id"] for ln in stack.compose("exec", "-T", "notifier", "cat", "/data/run/expected_alerts.jsonl").stdout.splitlines()}
    second = stack.compose("exec", "-T", "notifier", "cat", "/data/run2/expected_alerts.jsonl").stdout.splitlines()
    assert second and not first & {json.loads(ln)["alert_id"] for ln in second}
    stack.compose("exec", "-T", "notifier", "sh", "-c",
                  "cat /data/run/expected_alerts.jsonl /data/run2/expected_alerts.jsonl > /data/expected-both.jsonl")
    both = wait_until("verify to be clean after the crash", lambda: stack.verify("/data/expected-both.jsonl"), 240,
                      lambda: stack.last_verdict)
    assert both["delivered"] == len(first) + len(second)

    # SIGTERM, then SIGKILL after 10 s (compose's default): every service stops by itself in time
    started = time.monotonic()
    stack.compose("stop", timeout=120)
    stopped = stack.containers()
    for name in SERVICES:
        state = stopped[name]["State"]
        assert state["Status"] == "exited" and state["ExitCode"] in (0, 143), f"{name}: {state}"  # 137: SIGKILLed
    assert time.monotonic() - started < 60

    stack.compose("down", "-v")
    assert stack.containers() == {}
    left = run(["docker", "volume", "ls", "-q", "--filter", f"label=com.docker.compose.project={PROJECT}"]).stdout
    assert left.split() == []
    assert run(["docker", "network", "ls", "-q", "--filter", f"label=com.docker.compose.project={PROJECT}"]).stdout.split() == []


def test_no_service_crashed_while_the_stack_came_up() -> None:
    assert CRASHES, "the end-to-end test did not bring the stack up"
    assert CRASHES == {name: 0 for name in SERVICES}


def test_the_dashboard_reads_usage_from_the_worker() -> None:
    assert DASHBOARD_ERRORS, "the end-to-end test did not get the dashboard's snapshot"
    assert DASHBOARD_ERRORS["usage"] is None
