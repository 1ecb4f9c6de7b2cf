"""Running the Quix Streams peer (`bench/peers/quix_peer.py`) on the pre-loaded topic.

quixstreams pins older confluent-kafka and pydantic than paylimit does, so unless the running
interpreter already has it (`pip install -e '.[bench]'`), the peer gets a venv of its own under
the cache dir (`PAYLIMIT_CACHE_DIR/bench/quixstreams-VERSION`), made once with pip from PyPI.
The peer is timed like the workers: from its process start to the moment it has processed every
record and committed (its `done` line), and from its first record to its last.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from bench.config import LIMIT, ZONE
from bench.figures import Throughput
from paylimit.errors import InfraError
from paylimit.settings import Settings

QUIX_VERSION = "3.28.1"
SCRIPT = Path(__file__).parent / "peers" / "quix_peer.py"


def quix_python(settings: Settings, announce: Callable[[str], None] = lambda _m: None) -> tuple[str, str]:
    """(interpreter that can import quixstreams, its quixstreams version); makes the venv when needed."""
    if importlib.util.find_spec("quixstreams") is not None:
        from importlib.metadata import version

        return sys.executable, version("quixstreams")
    venv = settings.cache_dir / "bench" / f"quixstreams-{QUIX_VERSION}"
    python = venv / "bin" / "python"
    marker = venv / ".installed"
    if not marker.exists():
        announce(f"Installing quixstreams {QUIX_VERSION} into {venv} (once)")
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, capture_output=True)
        done = subprocess.run([str(python), "-m", "pip", "install", "-q", f"quixstreams=={QUIX_VERSION}", "tzdata"],
                              capture_output=True, text=True)
        if done.returncode != 0:
            raise InfraError(f"cannot install quixstreams into {venv}: {done.stderr.strip()[-500:]}")
        marker.touch()
    return str(python), QUIX_VERSION


@dataclass
class PeerRun:
    throughput: Throughput
    version: str
    alerts: int


def run_quix_peer(settings: Settings, topic: str, expected: int, timeout: float,
                  on_progress: Callable[[int], None] = lambda _n: None,
                  announce: Callable[[str], None] = lambda _m: None) -> PeerRun:
    python, version = quix_python(settings, announce)
    tag = uuid.uuid4().hex[:8]
    log = settings.home / "logs" / "quix-peer.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    argv = [python, str(SCRIPT), "--broker", settings.kafka_bootstrap_servers or "", "--topic", topic,
            "--alerts-topic", f"bench-quix-alerts-{tag}", "--group", f"bench-quix-{tag}",
            "--state-dir", str(settings.home / "quix-state"), "--expect", str(expected),
            "--limit", str(LIMIT), "--zone", ZONE]
    lines: list[dict] = []
    began_wall = time.time()
    with log.open("ab") as err:
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=err, stdin=subprocess.DEVNULL)
        reader = threading.Thread(target=_read, args=(proc, lines, on_progress), daemon=True)
        reader.start()
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        reader.join(timeout=5)
    done = next((ln for ln in lines if ln["event"] == "done"), None)
    if done is not None:
        tp = Throughput(done["records"], done["t"] - began_wall, done["t"] - done["first"])
        return PeerRun(tp, version, done["alerts"])
    progress = [ln for ln in lines if ln["event"] == "progress"]
    if not progress:
        raise InfraError(f"the Quix Streams peer processed nothing (exit {proc.returncode}); see {log}")
    last = progress[-1]
    tp = Throughput(last["records"], last["t"] - began_wall, last["t"] - progress[0]["t"], complete=False)
    return PeerRun(tp, version, 0)


def _read(proc: subprocess.Popen, lines: list[dict], on_progress: Callable[[int], None]) -> None:
    assert proc.stdout is not None
    shown = 0
    for raw in proc.stdout:
        try:
            line = json.loads(raw)
        except ValueError:
            continue  # not one of ours (a library printing to stdout)
        lines.append(line)
        on_progress(line["records"] - shown)
        shown = line["records"]
