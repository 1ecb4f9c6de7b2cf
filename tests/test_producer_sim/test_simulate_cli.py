"""`paylimit simulate` through CliRunner on the real broker: the files, and replayability."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Callable

import pytest
from typer.testing import CliRunner

from paylimit.cli.main import app
from paylimit.errors import ConfigError
from paylimit.settings import Settings

pytestmark = pytest.mark.integration


def lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def run(settings: Settings, *args: str):
    return CliRunner().invoke(app, ["simulate", *args], env=settings.as_env(), catch_exceptions=False)


def test_simulate_writes_the_files_and_replays_identically(make_settings: Callable[..., Settings],
                                                           tmp_path: Path) -> None:
    first = run(make_settings(), "--scenario", "out_of_order_late", "--seed", "5", "--out", str(tmp_path / "a"))
    assert first.exit_code == 0, first.output
    assert "expected alerts" in first.output
    events = lines(tmp_path / "a" / "events.jsonl")
    assert [e["seq"] for e in events] == list(range(len(events)))
    assert all({"key", "value", "partition", "offset", "produced_at", "expect_error"} <= e.keys() for e in events)
    alerts = lines(tmp_path / "a" / "expected_alerts.jsonl")
    assert alerts and [a["alert_id"] for a in alerts] == sorted(a["alert_id"] for a in alerts)
    assert any(a["late"] for a in alerts)
    letters = lines(tmp_path / "a" / "expected_dead_letters.jsonl")
    by_seq = {e["seq"]: e for e in events}
    assert letters and all(by_seq[d["seq"]]["offset"] == d["offset"] and d["error"] == "too_late" for d in letters)

    second = run(make_settings(), "--scenario", "out_of_order_late", "--seed", "5", "--out", str(tmp_path / "b"))
    assert second.exit_code == 0, second.output
    assert (tmp_path / "a" / "expected_alerts.jsonl").read_bytes() == (tmp_path / "b" / "expected_alerts.jsonl").read_bytes()
    assert [e["value"] for e in events] == [e["value"] for e in lines(tmp_path / "b" / "events.jsonl")]


def test_unknown_scenario_is_one_line(make_settings: Callable[..., Settings], tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["simulate", "--scenario", "nope", "--out", str(tmp_path)],
                                env=make_settings().as_env())
    assert isinstance(result.exception, ConfigError)
    assert "unknown scenario 'nope'" in str(result.exception)
    # as a user runs it: the root app prints the one line, no traceback
    proc = subprocess.run([sys.executable, "-m", "paylimit", "simulate", "--scenario", "nope", "--out", str(tmp_path)],
                          env={**os.environ, **make_settings().as_env()}, capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0
    assert "unknown scenario 'nope'" in proc.stderr and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_broken_file_is_one_line(make_settings: Callable[..., Settings], tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: bad\nstart: 2024-01-01\npopulations: 3\n")
    result = CliRunner().invoke(app, ["simulate", "--scenario", str(bad), "--out", str(tmp_path / "o")],
                                env=make_settings().as_env())
    assert isinstance(result.exception, ConfigError)
    assert str(bad) in str(result.exception) and "start" in str(result.exception)
    assert "\n" not in str(result.exception)
