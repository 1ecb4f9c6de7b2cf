"""`paylimit infra down` signals a recorded pid only while it is still the process started: a state
file whose pids now belong to other processes (pid reuse, a reboot) stops none of them."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Iterator

import pytest

from paylimit.runtime import processes
from tests.test_runtime.test_infra_cli import paylimit


@pytest.fixture
def sleepers() -> Iterator[list[subprocess.Popen[bytes]]]:
    procs = [subprocess.Popen(["sleep", "600"]) for _ in range(4)]
    yield procs
    for proc in procs:
        proc.kill()
        proc.wait()


def test_down_leaves_processes_that_are_not_the_ones_started(tmp_path: Path,
                                                              sleepers: list[subprocess.Popen[bytes]]) -> None:
    unrecorded, other_program, other_start, ours = sleepers
    me = {p.pid: processes.identity(p.pid) for p in sleepers}
    assert all(me.values())
    state = {
        "kafka_pids": [unrecorded.pid, other_program.pid],  # the first with no identity recorded at all
        "kafka_bootstrap": "127.0.0.1:1,127.0.0.1:2",
        "redis_pid": other_start.pid, "redis_url": "redis://127.0.0.1:1/0",
        "services": [{"name": "worker-1", "pid": ours.pid, "identity": me[ours.pid], "address": "-"}],
        "procs": {str(other_program.pid): {**me[other_program.pid], "program": "/usr/bin/java"},
                  str(other_start.pid): {**me[other_start.pid], "start": me[other_start.pid]["start"] - 1}},
    }
    (tmp_path / "infra").mkdir()
    (tmp_path / "infra" / "state.json").write_text(json.dumps(state))
    done = paylimit(tmp_path, "infra", "down")
    assert done.returncode == 0, done.stdout + done.stderr
    # the recorded service, still the very process, is stopped; the three others are not signalled
    assert ours.wait(timeout=30) is not None
    assert [p.poll() for p in (unrecorded, other_program, other_start)] == [None, None, None]
