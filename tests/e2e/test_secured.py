"""The pipeline on a secured local infra (`paylimit infra up --secure`): a real broker whose client
listener is SASL_SSL (SCRAM-SHA-512, a client certificate required), and Redis with a password.

Every client goes through it with the settings `paylimit infra env` prints: the simulator, the
worker (faust's aiokafka clients and the confluent-kafka reader, writer and restore), the notifier,
the dashboard, `paylimit limits` and `paylimit verify`. Credentials the broker or Redis refuses are
one line at start, and no secret reaches a log.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import urllib.request
import uuid
from pathlib import Path
from typing import Any, Iterator

import pytest
from pydantic import SecretStr

from paylimit.kafka import ensure_topics
from paylimit.runtime import local
from paylimit.runtime.pipeline import Pipeline
from paylimit.settings import Settings, get_settings
from producer_sim.generator import generate
from producer_sim.publisher import publish_limits
from producer_sim.scenario import load_scenario
from tests.e2e.harness import expected_usage, paylimit, read_jsonl, simulate, verify, wrong_usage_answers
from tests.test_faults.helpers import ready, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

SCENARIO, SEED = "limit_overrides", 5


def clean_env(home: Path) -> dict[str, str]:
    """The environment of a shell that has only PAYLIMIT_HOME set."""
    return {**{k: v for k, v in os.environ.items() if not k.startswith("PAYLIMIT_")}, "PAYLIMIT_HOME": str(home)}


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, dict[str, str]]]:
    """A secured local infra: its PAYLIMIT_HOME and the `export` lines of `paylimit infra env`."""
    home = tmp_path_factory.mktemp("secured")
    up = subprocess.run([sys.executable, "-m", "paylimit", "infra", "up", "--secure"], env=clean_env(home),
                        capture_output=True, text=True, timeout=300)
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        out = subprocess.run([sys.executable, "-m", "paylimit", "infra", "env"], env=clean_env(home),
                             capture_output=True, text=True, timeout=60, check=True).stdout
        exports = dict(shlex.split(line.removeprefix("export "))[0].split("=", 1) for line in out.splitlines())
        yield home, exports
    finally:
        local.down(get_settings(home=home))


def settings_from(exports: dict[str, str], home: Path, **overrides: Any) -> Settings:
    """Settings read from the environment `eval "$(paylimit infra env)"` makes, on fresh topics."""
    tag = uuid.uuid4().hex[:10]
    with pytest.MonkeyPatch.context() as env:
        for name in [n for n in os.environ if n.startswith("PAYLIMIT_")]:
            env.delenv(name)
        for name, value in exports.items():
            env.setenv(name, value)
        return get_settings(home=home / f"run-{tag}", app_id=f"secured-{tag}", topic_transactions=f"tx-{tag}",
                            topic_alerts=f"alerts-{tag}", topic_dlq=f"dlq-{tag}", web_port=0, **overrides)


def secrets_of(settings: Settings) -> list[str]:
    assert settings.kafka_sasl_password and settings.kafka_ssl_key_password and settings.redis_url
    redis_password = settings.redis_url.get_secret_value().split("//:", 1)[1].split("@", 1)[0]
    return [settings.kafka_sasl_password.get_secret_value(), settings.kafka_ssl_key_password.get_secret_value(),
            redis_password]


def test_infra_env_gives_the_secured_settings(secured: tuple[Path, dict[str, str]]) -> None:
    home, exports = secured
    assert exports["PAYLIMIT_KAFKA_SECURITY_PROTOCOL"] == "SASL_SSL"
    assert exports["PAYLIMIT_KAFKA_SASL_MECHANISM"] == "SCRAM-SHA-512"
    assert exports["PAYLIMIT_KAFKA_SASL_USERNAME"] == "paylimit"
    for name in ("CA", "CERTIFICATE", "KEY"):
        assert Path(exports[f"PAYLIMIT_KAFKA_SSL_{name}_LOCATION"]).is_file()
    assert all(len(secret) >= 32 for secret in secrets_of(settings_from(exports, home)))
    # the broker's client listener is SASL_SSL only: what it advertises is that port
    status = paylimit(get_settings(home=home), "infra", "status")
    assert exports["PAYLIMIT_KAFKA_BOOTSTRAP_SERVERS"] in status.stdout
    assert not any(secret in status.stdout for secret in secrets_of(settings_from(exports, home)))


def dashboard_snapshot(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(f"{url}api/snapshot", timeout=5) as resp:
        return dict(json.load(resp))


def test_every_client_runs_through_the_secured_infra(secured: tuple[Path, dict[str, str]], tmp_path: Path) -> None:
    home, exports = secured
    # without PAYLIMIT_KAFKA_SASL_MECHANISM: every client, librdkafka's and faust's, takes the one default
    settings = ensure_topics(settings_from({k: v for k, v in exports.items() if k != "PAYLIMIT_KAFKA_SASL_MECHANISM"},
                                           home))
    outputs: list[str] = []
    overrides = generate(load_scenario(SCENARIO), SEED).overrides
    publish_limits(settings, {u: n for u, n in overrides.items() if u != "standard-0000"})
    outputs.append(paylimit(settings, "limits", "set", "standard-0000", str(overrides["standard-0000"])).stdout)
    shown = paylimit(settings, "limits", "show").stdout
    outputs.append(shown)
    assert "standard-0000" in shown
    pipeline = Pipeline(settings)
    pipeline.start()
    try:
        wait_for(lambda: ready(pipeline), 180, "the worker to be ready on the secured broker")
        run = simulate(settings, tmp_path / "run", SCENARIO, SEED)
        pipeline.wait_drained(timeout=180)
        result = verify(settings, run / "expected_alerts.jsonl")
        assert (result["missing"], result["extra"], result["duplicate"], result["wrong_field"]) == (0, 0, 0, 0), result
        assert result["exit_code"] == 0 and result["delivered"] == result["expected"] > 0

        sent = len(read_jsonl(run / "events.jsonl"))
        dashboard = pipeline.start_dashboard()
        snapshots: list[dict[str, Any]] = []

        def dashboard_sees_it_all() -> bool:
            snapshots.append(dashboard_snapshot(dashboard))
            snap = snapshots[-1]
            return (not any(snap["errors"].values()) and snap["totals"]["produced"] == sent
                    and snap["totals"]["notifier_lag"] == 0 and bool(snap["notifications"]))

        wait_for(dashboard_sees_it_all, 60, "the dashboard to read Kafka and Redis", step=0.5)

        # the worker restores its counts from the changelog through the secured listener
        worker = pipeline.workers[0]
        worker.kill9()
        worker.restart()
        wait_for(lambda: ready(pipeline, worker), 180, "the restarted worker to be ready")
        assert wrong_usage_answers([pipeline.worker_url(worker)], expected_usage(settings, run)) == []
    finally:
        pipeline.stop()
    # the services', the broker's and Redis's logs (not the broker's data segments, also *.log)
    logs = [p for p in [*home.rglob("*.log"), *tmp_path.rglob("*.log")] if "data" not in p.parts]
    assert {"worker-1.log", "notifier.log", "dashboard.log", "broker.log", "redis.log"} <= {p.name for p in logs}
    for text in [*(p.read_text(errors="replace") for p in logs), *outputs]:
        assert not [secret for secret in secrets_of(settings) if secret in text]


@pytest.mark.parametrize(("command", "change", "expected"), [
    ("worker", {"kafka_sasl_password": SecretStr("not-the-password")}, "SASL authentication error"),
    ("limits", {"kafka_ssl_certificate_location": None, "kafka_ssl_key_location": None}, "alert bad certificate"),
    ("notifier", {"redis_url": "wrong"}, "Redis refused the login"),
])
def test_refused_credentials_are_one_line_at_start(secured: tuple[Path, dict[str, str]], command: str,
                                                   change: dict[str, Any], expected: str) -> None:
    home, exports = secured
    good = settings_from(exports, home)
    if change.get("redis_url"):  # the right URL with another password
        assert good.redis_url
        change = {"redis_url": SecretStr(good.redis_url.get_secret_value().replace(secrets_of(good)[2], "not-the-password"))}
    settings = good.model_copy(update=change)
    proc = paylimit(settings, *([command, "show"] if command == "limits" else [command]), timeout=120, check=False)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and expected in lines[0], proc.stderr
    assert not [secret for secret in secrets_of(good) if secret in proc.stdout + proc.stderr]
