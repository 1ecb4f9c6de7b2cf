"""`paylimit demo` as a user runs it: from nothing to a clean verification, and a clean Ctrl-C.

The demo starts its own Kafka broker and Redis server here (no PAYLIMIT_KAFKA_BOOTSTRAP_SERVERS /
PAYLIMIT_REDIS_URL), so these tests also prove it leaves no Java, Redis or worker process behind.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Callable

import psutil
import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.integration]


def demo_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PAYLIMIT_")}
    return {**env, "PAYLIMIT_HOME": str(home), "COLUMNS": "120"}


def processes_of(home: Path) -> list[str]:
    """Live processes started for this PAYLIMIT_HOME (by command line or environment)."""
    found = []
    for proc in psutil.process_iter(["pid", "cmdline"]):
        try:
            if proc.pid == os.getpid():
                continue
            cmdline = " ".join(proc.info["cmdline"] or [])
            if str(home) in cmdline or proc.environ().get("PAYLIMIT_HOME", "").startswith(str(home)):
                if proc.status() != psutil.STATUS_ZOMBIE:
                    found.append(f"{proc.pid} {cmdline[:120]}")
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return found


def start_demo(home: Path, *args: str) -> tuple[subprocess.Popen, Path]:
    """`paylimit demo` as a child process, its output (stdout and stderr) going to a file."""
    output = home.parent / "demo.out"
    with open(output, "w") as sink:
        # with SIGINT as a terminal has it: a suite started as a background job inherits it ignored,
        # and Python then never turns Ctrl-C into KeyboardInterrupt
        proc = subprocess.Popen([sys.executable, "-m", "paylimit", "demo", *args], env=demo_env(home),
                                stdout=sink, stderr=subprocess.STDOUT, text=True,
                                preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    return proc, output


SERVICES = ("kafka.Kafka", "redis-server", "paylimit worker", "paylimit notifier", "paylimit dashboard")


Seen = dict[int, tuple[psutil.Process, str]]  # pid -> (process, the first command line naming a service)


def started_by(proc: subprocess.Popen, seen: Seen) -> Seen:
    """Add the demo's live descendants to `seen`. Redis rewrites its process title and environment,
    so only parentage tells it was started for this demo; a child caught between fork and exec
    still shows the demo's own command line, so it is looked at again until it names a service."""
    try:
        children = psutil.Process(proc.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return seen
    for child in children:
        if child.pid not in seen or not any(s in seen[child.pid][1] for s in SERVICES):
            try:
                seen[child.pid] = (child, " ".join(child.cmdline()))
            except (psutil.NoSuchProcess, psutil.ZombieProcess):
                continue  # a short-lived helper (the storage format, say) that is already gone
    return seen


def kinds(seen: Seen) -> set[str]:
    return {s for _, cmdline in seen.values() for s in SERVICES if s in cmdline}


def still_alive(seen: Seen) -> list[str]:
    alive = []
    for p, cmdline in seen.values():
        try:
            if p.is_running() and p.status() != psutil.STATUS_ZOMBIE:
                alive.append(f"{p.pid} {cmdline[:120]}")
        except psutil.NoSuchProcess:
            continue
    return alive


def kill_if_running(proc: subprocess.Popen, seen: Seen) -> None:
    """A demo still running here failed its test: kill it and what it started, so nothing is left."""
    if proc.poll() is None:
        proc.kill()
        proc.wait()
        for p, _ in seen.values():
            with contextlib.suppress(psutil.NoSuchProcess):
                p.kill()


def run_to_end(proc: subprocess.Popen, output: Path, seconds: float) -> tuple[str, Seen]:
    """Wait for the demo to end, noting what it started; after `seconds` (inside pytest's timeout, so
    a hang fails with the output) kill what still runs. Its output and what it started."""
    seen: Seen = {}
    try:
        deadline = time.monotonic() + seconds
        while proc.poll() is None and time.monotonic() < deadline:
            started_by(proc, seen)
            time.sleep(0.5)
    finally:
        kill_if_running(proc, seen)
    return output.read_text(), seen


def test_demo_runs_to_a_clean_verification_and_stops_everything(tmp_path: Path) -> None:
    home = tmp_path / "home"
    proc, output = start_demo(home, "--duration", "15")
    out, seen = run_to_end(proc, output, 400)
    assert proc.returncode == 0, out[-5000:]
    assert kinds(seen) == set(SERVICES), kinds(seen)  # it really started them, so the check below means something
    assert "verification: delivered vs expected" in out and "clean" in out and "NOT clean" not in out
    for check in ("missing", "extra", "duplicate", "wrong field"):
        line = next(ln for ln in out.splitlines() if f" {check} " in ln)
        assert "│     0 │" in line or "│ 0 │" in line.replace(" ", "").replace("│0│", "│ 0 │"), line
    assert "latest notifications" in out and "/users/USER_ID/usage" in out and "dashboard" in out
    run = next((home / "runs").iterdir())
    notes = [json.loads(line) for line in (run / "notifications.jsonl").read_text().splitlines()]
    assert len(notes) > 10
    # the example rules file's heads-ups and alerts, verified with the rest above
    fired = {(n["rule"], n["tier"]) for n in notes}
    assert {("daily_count", "warn"), ("daily_count", "alert"), ("daily_amount", "warn"), ("daily_amount", "alert"),
            ("p2p_24h", "alert")} <= fired, fired
    assert processes_of(home) == [] and still_alive(seen) == []


def worker_ready(seen: Seen) -> bool:
    """Does the demo's worker's own `/ready` say it counts (its address: the environment it was started with)?"""
    for p, cmdline in seen.values():
        if "paylimit worker" not in cmdline:
            continue
        try:
            env = p.environ()
            url = f"http://{env.get('PAYLIMIT_WEB_HOST', '127.0.0.1')}:{env['PAYLIMIT_WEB_PORT']}/ready"
            with urllib.request.urlopen(url, timeout=2) as resp:
                return resp.status == 200
        except (psutil.Error, KeyError, OSError):
            return False
    return False


def halfway(tmp_path: Path, act: Callable[[subprocess.Popen, Seen], None]) -> tuple[subprocess.Popen, str, Path, Seen]:
    """A two-minute demo; once every service runs and the worker is ready (events are flowing),
    `act` on it and wait for the demo to end. Returns the demo, its output, its home and its processes."""
    home = tmp_path / "home"
    proc, output = start_demo(home, "--duration", "120")
    seen: Seen = {}
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            assert proc.poll() is None, f"the demo exited early ({proc.returncode}): {output.read_text()[-3000:]}"
            if kinds(started_by(proc, seen)) == set(SERVICES) and worker_ready(seen):
                break
            time.sleep(0.5)
        else:
            pytest.fail(f"the demo's services never all ran with a ready worker (saw {sorted(kinds(seen))})")
        act(proc, seen)
        proc.wait(timeout=120)
    finally:
        kill_if_running(proc, seen)
    return proc, output.read_text(), home, seen


def test_ctrl_c_halfway_stops_everything(tmp_path: Path) -> None:
    def ctrl_c(proc: subprocess.Popen, _seen: Seen) -> None:
        time.sleep(5)
        proc.send_signal(signal.SIGINT)

    proc, out, home, seen = halfway(tmp_path, ctrl_c)
    assert proc.returncode == 130, out[-3000:]
    assert "interrupted: stopping everything" in out
    assert "Traceback" not in out
    assert processes_of(home) == [] and still_alive(seen) == []


def test_a_dead_worker_ends_the_demo_with_its_log_instead_of_a_wait(tmp_path: Path) -> None:
    def kill_worker(_proc: subprocess.Popen, seen: Seen) -> None:
        [worker] = [p for p, cmdline in seen.values() if "paylimit worker" in cmdline]
        worker.kill()

    proc, out, home, seen = halfway(tmp_path, kill_worker)  # ended, not waiting for a lag that never drains
    assert proc.returncode == 1, out[-3000:]
    assert "no worker is running" in out and "worker-1.log" in out
    assert "Traceback" not in out
    assert processes_of(home) == [] and still_alive(seen) == []


def test_demo_on_a_cluster_with_a_broker_killed_midway_verifies_clean(tmp_path: Path) -> None:
    home = tmp_path / "home"
    proc, output = start_demo(home, "--brokers", "3", "--workers", "3", "--kill-broker-at", "15",
                              "--duration", "40")
    out, seen = run_to_end(proc, output, 500)
    assert proc.returncode == 0, out[-5000:]
    assert sum("kafka.Kafka" in cmdline for _, cmdline in seen.values()) >= 4  # three, and one started again
    assert "killed (kill -9)" in out and "started again and back in the cluster" in out
    assert "Kafka brokers up" in out and "3 / 3" in out
    assert "verification: delivered vs expected" in out and "NOT clean" not in out and "\nclean" in out
    assert processes_of(home) == [] and still_alive(seen) == []
