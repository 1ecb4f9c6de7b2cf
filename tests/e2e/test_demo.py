"""`paylimit demo` as a user runs it: from nothing to a clean verification, and a clean Ctrl-C.

The demo starts its own Kafka broker and Redis server here (no PAYLIMIT_KAFKA_BOOTSTRAP_SERVERS /
PAYLIMIT_REDIS_URL), so these tests also prove it leaves no Java, Redis or worker process behind.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

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


def test_demo_runs_to_a_clean_verification_and_stops_everything(tmp_path: Path) -> None:
    home = tmp_path / "home"
    proc = subprocess.run([sys.executable, "-m", "paylimit", "demo", "--duration", "15"], env=demo_env(home),
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    out = proc.stdout
    assert "verification: delivered vs expected" in out and "clean" in out and "NOT clean" not in out
    for check in ("missing", "extra", "duplicate", "wrong field"):
        line = next(ln for ln in out.splitlines() if f" {check} " in ln)
        assert "│     0 │" in line or "│ 0 │" in line.replace(" ", "").replace("│0│", "│ 0 │"), line
    assert "latest notifications" in out and "/users/USER_ID/usage" in out and "dashboard" in out
    run = next((home / "runs").iterdir())
    assert (run / "notifications.jsonl").read_text().count("\n") > 10
    assert processes_of(home) == []


def test_ctrl_c_halfway_stops_everything(tmp_path: Path) -> None:
    home = tmp_path / "home"
    proc = subprocess.Popen([sys.executable, "-m", "paylimit", "demo", "--duration", "120"], env=demo_env(home),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 180
        # halfway: the worker and the notifier run and events are flowing
        while time.monotonic() < deadline:
            assert proc.poll() is None, f"the demo exited early ({proc.returncode}): {proc.communicate()[0][-3000:]}"
            logs = list(home.glob("runs/*/logs/worker-1.log"))
            if logs and "Worker]: Ready" in logs[0].read_text(errors="replace"):
                break
            time.sleep(0.5)
        else:
            pytest.fail("the demo's worker never became ready")
        time.sleep(5)
        assert len(processes_of(home)) >= 5  # kafka, redis, worker, notifier, dashboard
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, out[-3000:]
    assert "interrupted: stopping everything" in out
    assert "Traceback" not in out
    assert processes_of(home) == []
