"""Mistakes a user makes, as a user makes them: the real `paylimit` command in a subprocess, on the
real broker and Redis. Each is one line on stderr and a non-zero exit, never a traceback, a crash
later on, or librdkafka's own lines in the terminal."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from paylimit.runtime.processes import free_port

pytestmark = pytest.mark.integration

PAYLIMIT = str(Path(sys.executable).with_name("paylimit"))


def cli_env(home: Path, kafka: str, redis_url: str, **settings: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PAYLIMIT_")}
    tag = uuid.uuid4().hex[:10]
    env.update(PAYLIMIT_HOME=str(home), PAYLIMIT_KAFKA_BOOTSTRAP_SERVERS=kafka, PAYLIMIT_REDIS_URL=redis_url,
               PAYLIMIT_APP_ID=f"usererrors-{tag}", PAYLIMIT_TOPIC_TRANSACTIONS=f"tx-{tag}",
               PAYLIMIT_TOPIC_ALERTS=f"alerts-{tag}", PAYLIMIT_TOPIC_DLQ=f"dlq-{tag}", PAYLIMIT_WEB_PORT="0",
               PAYLIMIT_DASHBOARD_PORT="0", COLUMNS="200", NO_COLOR="1")
    env.update({f"PAYLIMIT_{k.upper()}": v for k, v in settings.items()})
    return env


def run_all(commands: list[list[str]], env: dict[str, str], timeout: float = 120) -> dict[str, tuple[int, str, str, float]]:
    """Run the commands at once (each would otherwise wait on its own); (exit code, stdout, stderr,
    seconds) per command. One still running at `timeout` is killed and fails the test."""
    began = time.monotonic()
    procs = {" ".join(c): subprocess.Popen([PAYLIMIT, *c], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                           text=True, start_new_session=True) for c in commands}
    results: dict[str, tuple[int, str, str, float]] = {}
    try:
        for name, proc in procs.items():
            out, err = proc.communicate(timeout=max(1.0, timeout - (time.monotonic() - began)))
            results[name] = (proc.returncode, out, err, time.monotonic() - began)
    except subprocess.TimeoutExpired:
        pytest.fail(f"still running after {timeout:.0f} s: {[n for n, p in procs.items() if p.poll() is None]}")
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    return results


def one_line_error(name: str, result: tuple[int, str, str, float]) -> str:
    code, out, err, _ = result
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert code != 0, f"{name}: exit 0\n{out}{err}"
    assert len(lines) == 1 and "Traceback" not in err, f"{name}:\n{err}"
    assert "%3|" not in out + err and "%4|" not in out + err, f"{name}: librdkafka wrote to the terminal\n{out}{err}"
    return lines[0]


def every_command(tmp_path: Path) -> list[list[str]]:
    """The commands that talk to Kafka."""
    return [["worker"], ["notifier"], ["dashboard"], ["simulate", "--scenario", "default", "--out", str(tmp_path / "sim")],
            ["limits", "show"], ["limits", "set", "u", "5"], ["limits", "clear", "u"], ["demo", "--duration", "5"],
            ["chaos", "--kills", "1"]]


def test_a_bad_setting_is_one_line_in_every_command(kafka_bootstrap: str, redis_url: str, tmp_path: Path) -> None:
    """PAYLIMIT_DEFAULT_TIMEZONE=Mars/Base used to be accepted, and the worker then crashed at its
    first record without a zone, again at every restart. Now no command starts with it."""
    env = cli_env(tmp_path / "home", kafka_bootstrap, redis_url, default_timezone="Mars/Base")
    expected = tmp_path / "expected_alerts.jsonl"
    expected.write_text("")
    commands = [*every_command(tmp_path), ["notifications"], ["verify", "--expected", str(expected)],
                ["infra", "status"], ["infra", "env"]]
    for name, result in run_all(commands, env).items():
        assert one_line_error(name, result) == "error: PAYLIMIT_DEFAULT_TIMEZONE: unknown time zone 'Mars/Base'"


def test_several_bad_settings_are_named_on_one_line(kafka_bootstrap: str, redis_url: str, tmp_path: Path) -> None:
    env = cli_env(tmp_path / "home", kafka_bootstrap, redis_url, web_port="70000", notifier_lease="0",
                  kafka_heap="lots")
    line = one_line_error("worker", run_all([["worker"]], env)["worker"])
    assert line.startswith("error: PAYLIMIT_") and "PAYLIMIT_WEB_PORT: Input should be less than or equal to 65535" in line
    assert "PAYLIMIT_NOTIFIER_LEASE: must be more than 0" in line
    assert "PAYLIMIT_KAFKA_HEAP: String should match pattern '^\\d+[kKmMgG]?$'" in line  # not eaten as markup


def test_unreachable_kafka_is_one_line_within_a_bounded_wait(redis_url: str, tmp_path: Path) -> None:
    """`PAYLIMIT_KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:1 paylimit simulate` used to print ~580 librdkafka
    `Connect … failed` lines and a traceback after 30 s."""
    nobody = f"127.0.0.1:{free_port()}"  # nothing listens there
    env = cli_env(tmp_path / "home", nobody, redis_url)
    for name, result in run_all(every_command(tmp_path), env).items():
        line = one_line_error(name, result)
        assert line.startswith(f"error: Kafka at {nobody} did not answer within 10 s"), f"{name}: {line}"
        assert result[3] < 60, f"{name} took {result[3]:.0f} s"  # 10 s of waiting, and a loaded machine


def test_limits_refuses_blank_users_and_limits_out_of_range(kafka_bootstrap: str, redis_url: str, tmp_path: Path) -> None:
    env = cli_env(tmp_path / "home", kafka_bootstrap, redis_url)
    results = run_all([["limits", "set", "", "5"], ["limits", "set", " ", "5"], ["limits", "clear", ""],
                       ["limits", "set", "u", "-1"], ["limits", "set", "u", "5000"]], env)
    assert one_line_error("set ''", results["limits set  5"]) == "error: the user id must not be blank"
    assert one_line_error("set ' '", results["limits set   5"]) == "error: the user id must not be blank"
    assert one_line_error("clear ''", results["limits clear "]) == "error: the user id must not be blank"
    assert one_line_error("set u -1", results["limits set u -1"]) == "error: the limit must be from 0 to 1000, not -1"
    # above the bound a day's state keeps its ids in full (stream_app.state)
    assert one_line_error("set u 5000", results["limits set u 5000"]) == "error: the limit must be from 0 to 1000, not 5000"

    # the real topic holds only what was accepted
    (code, out, err, _), = run_all([["limits", "set", "[b]alice", "0"]], env).values()
    assert code == 0 and out.strip() == "limit of [b]alice set to 0", out + err
    (code, out, err, _), = run_all([["limits", "show"]], env).values()
    rows = [ln.split("│")[1:3] for ln in out.splitlines() if ln.startswith("│")]
    assert [(u.strip(), n.strip()) for u, n in rows] == [("[b]alice", "0")], out


def test_librdkafka_lines_go_through_python_logging(kafka_bootstrap: str) -> None:
    """A client built from the settings logs through the `paylimit.librdkafka` logger: a service's
    log gets the lines, a terminal never gets them raw."""
    script = f"""
import logging
from confluent_kafka import Producer
from paylimit.settings import get_settings

lines = []
class Keep(logging.Handler):
    def emit(self, record):
        lines.append(record.getMessage())
logging.getLogger("paylimit.librdkafka").addHandler(Keep())
logging.getLogger("paylimit.librdkafka").setLevel(logging.DEBUG)  # level 7: debug, on a real broker's every answer
conf = get_settings(kafka_bootstrap_servers={kafka_bootstrap!r}).kafka_client_config(log_level=7, debug="broker")
producer = Producer(conf)
producer.list_topics(timeout=30)
producer.poll(1)  # log lines are handed over on poll
print(len(lines), sum("{kafka_bootstrap}" in line for line in lines))
"""
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""  # librdkafka printed nothing itself
    logged, about_broker = map(int, proc.stdout.split())
    assert logged > 0 and about_broker > 0, proc.stdout
