"""`paylimit notifications` and `paylimit verify` with CliRunner, over the shared record in a real Redis."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import date
from pathlib import Path
from typing import Callable

import pytest
from pydantic import SecretStr
from typer.testing import CliRunner

from notifier.delivery import Delivery, Outcome
from paylimit.cli.main import app
from paylimit.contracts import Notification, encode
from paylimit.errors import ConfigError, InfraError
from paylimit.notification_record import notifier_name, record_key, redis_client
from paylimit.runtime.processes import free_port
from paylimit.settings import Settings
from tests.test_notifier.factory import expected_of, make_alert, notification_of

pytestmark = pytest.mark.integration

runner = CliRunner()

A = make_alert("alice", day=date(2025, 3, 10))
B = make_alert("bob", day=date(2025, 3, 10), zone="America/New_York")
C = make_alert("alice", day=date(2025, 3, 11), late=True)


def record(s: Settings, n: Notification) -> None:
    """Add an entry to the shared record as it is stored (no fencing: a test may write a duplicate)."""
    redis_client(s).xadd(record_key(s), {"notification": encode(n).decode(), "notifier": "a-test"})


@pytest.fixture
def home(make_settings: Callable[..., Settings]) -> Settings:
    s = make_settings()
    for a in (A, B, C):
        record(s, notification_of(a))
    return s


def invoke(s: Settings, *args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args), env={**s.as_env(), "COLUMNS": "250"})
    return result.exit_code, result.output


def write_expected(path: Path, *alerts: object) -> Path:
    path.write_text("".join(expected_of(a).model_dump_json() + "\n" for a in alerts))  # type: ignore[arg-type]
    return path


def test_notifications_json_lines(home: Settings) -> None:
    for s in (home, home.model_copy(update={"home": home.home.parent / "another-machine"})):  # any home
        code, out = invoke(s, "notifications", "--json")
        assert code == 0
        rows = [json.loads(line) for line in out.splitlines()]
        assert [r["alert_id"] for r in rows] == [A.alert_id, B.alert_id, C.alert_id]
    assert {"delivered_at", "detected_at", "transaction_ids", "late", "crossing_transaction_id"} <= set(rows[0])


def test_notifications_filters(home: Settings) -> None:
    _, out = invoke(home, "notifications", "--json", "--user", "alice")
    assert [json.loads(x)["alert_id"] for x in out.splitlines()] == [A.alert_id, C.alert_id]
    _, out = invoke(home, "notifications", "--json", "--user", "alice", "--date", "2025-03-11")
    assert [json.loads(x)["alert_id"] for x in out.splitlines()] == [C.alert_id]
    _, out = invoke(home, "notifications", "--json", "--date", "2025-03-10")
    assert [json.loads(x)["user_id"] for x in out.splitlines()] == ["alice", "bob"]


def test_notifications_table(home: Settings) -> None:
    code, out = invoke(home, "notifications")
    assert code == 0
    assert "alice" in out and "America/New_York" in out and "11/10" in out and A.crossing_transaction_id[:8] in out


def test_notifications_table_says_what_each_notifier_recorded(make_settings: Callable[..., Settings]) -> None:
    s = make_settings()
    other = s.model_copy(update={"home": s.home.parent / "machine-b"})
    for who, alert in ((s, A), (other, B), (other, C)):
        assert Delivery(who, redis_client(who)).deliver(alert).outcome is Outcome.DELIVERED
    code, out = invoke(s, "notifications")
    assert code == 0
    assert f"recorded by notifier {notifier_name(s)}: 1" in out
    assert f"recorded by notifier {notifier_name(other)}: 2" in out


def config_error(s: Settings, *args: str, error: type[Exception] = ConfigError) -> str:
    """The ConfigError a command raised (the root app's __call__, not CliRunner, prints it as one line)."""
    result = runner.invoke(app, list(args), env=s.as_env())
    assert result.exit_code == 1 and isinstance(result.exception, error), result.output
    return str(result.exception)


def test_notifications_bad_date_is_a_config_error(home: Settings) -> None:
    assert "--date" in config_error(home, "notifications", "--date", "tomorrow")


def test_notifications_with_an_empty_record(make_settings: Callable[..., Settings]) -> None:
    code, out = invoke(make_settings(), "notifications", "--json")
    assert code == 0 and out == ""


def test_an_unreachable_redis_is_one_infra_error(home: Settings, tmp_path: Path) -> None:
    away = home.model_copy(update={"redis_url": SecretStr(f"redis://127.0.0.1:{free_port()}/0")})
    assert "notifications record" in config_error(away, "notifications", error=InfraError)
    expected = write_expected(tmp_path / "expected_alerts.jsonl", A)
    assert "notifications record" in config_error(away, "verify", "--expected", str(expected), error=InfraError)


def test_verify_clean_exits_0(home: Settings, tmp_path: Path) -> None:
    expected = write_expected(tmp_path / "expected_alerts.jsonl", A, B, C)
    code, out = invoke(home, "verify", "--expected", str(expected), "--json")
    assert code == 0
    result = json.loads(out)
    assert result["clean"] is True
    assert (result["expected"], result["delivered"], result["missing"], result["extra"], result["duplicate"],
            result["wrong_field"]) == (3, 3, 0, 0, 0, 0)
    code, out = invoke(home, "verify", "--expected", str(expected))
    assert code == 0 and "clean" in out


def test_verify_problems_exit_1_with_ids(home: Settings, tmp_path: Path) -> None:
    record(home, notification_of(A))  # duplicate
    missing = make_alert("carol")
    wrong = B.model_copy(update={"count": 99})
    expected = write_expected(tmp_path / "expected_alerts.jsonl", A, wrong, missing)  # C is extra
    code, out = invoke(home, "verify", "--expected", str(expected), "--json")
    assert code == 1
    r = json.loads(out)
    assert r["clean"] is False
    assert r["missing_ids"] == [missing.alert_id] and r["extra_ids"] == [C.alert_id]
    assert r["duplicate_ids"] == [A.alert_id] and r["wrong_field_ids"] == {B.alert_id: ["count"]}
    assert (r["missing"], r["extra"], r["duplicate"], r["wrong_field"]) == (1, 1, 1, 1)
    code, out = invoke(home, "verify", "--expected", str(expected))
    assert code == 1 and missing.alert_id in out and "count" in out and "NOT clean" in out


def test_verify_missing_or_bad_expected_file_is_a_config_error(home: Settings, tmp_path: Path) -> None:
    assert "not found" in config_error(home, "verify", "--expected", str(tmp_path / "nope.jsonl"))
    bad = tmp_path / "bad.jsonl"
    bad.write_text("{not json\n")
    assert "bad.jsonl:1" in config_error(home, "verify", "--expected", str(bad))


def test_verify_missing_file_prints_one_line_without_traceback(home: Settings, tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "paylimit", "verify", "--expected", str(tmp_path / "nope.jsonl")],
                          env={**os.environ, **home.as_env(), "COLUMNS": "300"}, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [f"error: expected alerts file not found: {tmp_path / 'nope.jsonl'}"]


def test_verify_says_when_the_record_was_trimmed(home: Settings, tmp_path: Path) -> None:
    redis_client(home).xtrim(record_key(home), maxlen=1, approximate=False)  # as the record's bound does
    code, out = invoke(home.model_copy(update={"record_max_entries": 1}), "verify", "--expected",
                       str(write_expected(tmp_path / "expected.jsonl", C)))
    assert "the record holds the latest 1 notifications; 2 older ones were trimmed" in out, out
    assert code == 0, out
