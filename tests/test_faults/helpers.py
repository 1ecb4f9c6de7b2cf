"""What the fault tests share: a paced simulator in the background, kill bookkeeping, exact verification."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from paylimit.runtime.pipeline import Pipeline, ServiceProcess
from paylimit.settings import Settings
from tests.e2e.harness import verify


@dataclass
class Background:
    """`paylimit simulate` running as a child process (events keep flowing while faults happen)."""

    proc: subprocess.Popen
    out: Path

    def running(self) -> bool:
        return self.proc.poll() is None

    def wait(self, timeout: float = 300) -> None:
        code = self.proc.wait(timeout=timeout)
        assert code == 0, f"simulate exited {code}; see {self.out.parent / 'simulate.log'}"


def simulate_in_background(settings: Settings, out: Path, scenario: str, seed: int, *extra: str) -> Background:
    log = out.parent / "simulate.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, **settings.as_env(), "COLUMNS": "120"}
    with open(log, "wb") as sink:
        proc = subprocess.Popen([sys.executable, "-m", "paylimit", "simulate", "--scenario", scenario, "--seed",
                                 str(seed), "--out", str(out), *extra], stdout=sink, stderr=subprocess.STDOUT, env=env)
    return Background(proc, out)


def wait_for(condition: Callable[[], bool], timeout: float, what: str, step: float = 0.1) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(step)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


def ready(pipeline: Pipeline, worker: ServiceProcess | None = None) -> bool:
    """Does the worker's own `/ready` say it counts (partitions assigned, state restored)?"""
    try:
        with urllib.request.urlopen(f"{pipeline.worker_url(worker)}/ready", timeout=2) as resp:
            return resp.status == 200
    except (OSError, ValueError):  # not listening yet, or 503 (an HTTPError is an OSError)
        return False


def consumed(pipeline: Pipeline) -> int:
    return int(pipeline.worker_metrics().get("consumed", 0))


def kill_and_check(service: ServiceProcess) -> int:
    """kill -9, and prove the process is gone; returns the dead pid."""
    pid = service.pid
    assert pid is not None and service.alive, f"{service.name} was not running before the kill"
    service.kill9()
    assert not service.alive, f"{service.name} (pid {pid}) survived kill -9"
    return pid


def assert_exact(settings: Settings, run: Path) -> dict:
    """verify --json: zero missing, extra, duplicate and wrong-field alerts."""
    result = verify(settings, run / "expected_alerts.jsonl")
    counts = (result["missing"], result["extra"], result["duplicate"], result["wrong_field"])
    assert counts == (0, 0, 0, 0), result
    assert result["exit_code"] == 0 and result["delivered"] == result["expected"], result
    return result
