"""docker-compose.yml and the Dockerfile agree with the `paylimit` CLI and DESIGN.md section 1.

No Docker engine is needed: the file is parsed with pyyaml and the command names are read
from the typer app at run time, so a renamed or missing subcommand fails here.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest
import typer.main
import yaml

from paylimit.cli.main import app

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    doc = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    assert isinstance(doc, dict)
    return doc


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return compose["services"]


def paylimit_services(services: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The services built from this repo's Dockerfile (ENTRYPOINT paylimit)."""
    return {name: svc for name, svc in services.items() if "build" in svc}


def argv(command: str | list[str]) -> list[str]:
    return command.split() if isinstance(command, str) else [str(a) for a in command]


def env_of(svc: dict[str, Any]) -> dict[str, str]:
    env = svc.get("environment", {})
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {str(k): str(v) for k, v in env.items()}


def test_expected_services(services: dict[str, dict[str, Any]]) -> None:
    assert {"kafka", "redis", "worker", "notifier", "dashboard", "simulator"} <= set(services)
    assert set(paylimit_services(services)) == {"worker", "notifier", "notifier-2", "dashboard", "simulator"}


def test_commands_are_paylimit_subcommands(services: dict[str, dict[str, Any]]) -> None:
    subcommands = set(typer.main.get_command(app).commands)  # type: ignore[attr-defined]
    for name, svc in paylimit_services(services).items():
        assert "command" in svc, name
        first = argv(svc["command"])[0]
        assert first in subcommands, f"service {name}: `paylimit {first}` is not a command ({sorted(subcommands)})"
    assert argv(services["worker"]["command"])[0] == "worker"
    assert argv(services["notifier"]["command"])[0] == "notifier"
    assert argv(services["simulator"]["command"]) == [
        "simulate", "--scenario", "default", "--seed", "1", "--out", "/data/run"]


def test_simulator_options_exist() -> None:
    sim = typer.main.get_command(app).commands["simulate"]  # type: ignore[attr-defined]
    options = {opt for param in sim.params for opt in param.opts}
    assert {"--scenario", "--seed", "--out"} <= options


def test_depends_on_healthy_services(services: dict[str, dict[str, Any]]) -> None:
    seen = 0
    for name, svc in services.items():
        deps = svc.get("depends_on", {})
        assert isinstance(deps, dict), f"{name}: depends_on must use the long form with a condition"
        for dep, spec in deps.items():
            seen += 1
            assert spec.get("condition") == "service_healthy", f"{name} -> {dep}"
            assert "healthcheck" in services[dep], f"{name} waits for {dep}, which has no healthcheck"
    assert seen >= 6  # worker, notifier and simulator each wait for kafka and redis


def test_paylimit_services_env_and_shared_volume(compose: dict[str, Any], services: dict[str, dict[str, Any]]) -> None:
    volumes = set()
    for name, svc in paylimit_services(services).items():
        env = env_of(svc)
        assert env["PAYLIMIT_KAFKA_BOOTSTRAP_SERVERS"] == "kafka:9092", name
        assert env["PAYLIMIT_REDIS_URL"] == "redis://redis:6379/0", name
        # notifier-2 has a home of its own on the volume, as another machine would (the record is shared)
        assert env["PAYLIMIT_HOME"] == ("/data/notifier-2" if name == "notifier-2" else "/data"), name
        mounts = [m for m in svc["volumes"] if str(m).endswith(":/data")]
        assert len(mounts) == 1, name
        volumes.add(mounts[0].split(":")[0])
    assert len(volumes) == 1  # one named volume: `compose exec notifier paylimit notifications` sees the log
    assert volumes <= set(compose["volumes"])


def test_simulator_behind_profile(services: dict[str, dict[str, Any]]) -> None:
    assert services["simulator"]["profiles"] == ["simulate"]
    for name in ("kafka", "redis", "worker", "notifier"):
        assert "profiles" not in services[name]


def test_worker_port_on_loopback(services: dict[str, dict[str, Any]]) -> None:
    assert "127.0.0.1:${HOST_WORKER_PORT:-6066}:6066" in services["worker"]["ports"]
    assert env_of(services["worker"])["PAYLIMIT_WEB_HOST"] == "0.0.0.0"  # reachable through the published port
    for svc in services.values():
        for port in svc.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), port


def test_redis_appendonly(services: dict[str, dict[str, Any]]) -> None:
    redis = services["redis"]
    assert str(redis["image"]).startswith("redis:7")
    cmd = argv(redis["command"])
    assert cmd[cmd.index("--appendonly") + 1] == "yes"
    assert "redis-cli" in argv(redis["healthcheck"]["test"]) and "ping" in argv(redis["healthcheck"]["test"])


def test_kafka_is_kraft_single_node(services: dict[str, dict[str, Any]]) -> None:
    kafka = services["kafka"]
    assert str(kafka["image"]).startswith("apache/kafka:4.")
    env = env_of(kafka)
    assert set(env["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    assert env["KAFKA_NODE_ID"] == "1"
    assert "CONTROLLER" in env["KAFKA_CONTROLLER_LISTENER_NAMES"]
    assert "PLAINTEXT://kafka:9092" in env["KAFKA_ADVERTISED_LISTENERS"]
    assert env["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"] == "1"
    assert env["KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR"] == "1"
    assert env["KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS"] == "0"
    assert not any(k.startswith("KAFKA_ZOOKEEPER") for k in env)
    test = " ".join(argv(kafka["healthcheck"]["test"]))
    assert "/opt/kafka/bin/kafka-topics.sh --bootstrap-server localhost:9092 --list" in test


def test_dockerfile() -> None:
    lines = [ln.strip() for ln in (ROOT / "Dockerfile").read_text().splitlines() if ln.strip() and not ln.startswith("#")]
    assert lines[:2] == ["ARG PYTHON_IMAGE=python:3.11-slim", "FROM ${PYTHON_IMAGE}"]
    assert any(ln.startswith("RUN pip install --no-deps .") for ln in lines)
    assert 'ENTRYPOINT ["paylimit"]' in lines and "USER paylimit" in lines
    # every package pyproject installs is copied into the image (dashboard/ once was not)
    packages = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]["find"]["include"]
    for package in packages:
        assert f"COPY {package.rstrip('*')} ./{package.rstrip('*')}" in lines, package
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert ".venv" in ignored and ".git" in ignored and ".paylimit" in ignored


def test_the_worker_is_a_static_member_compose_restarts(services: dict[str, dict[str, Any]]) -> None:
    # one worker (its port is published), restarted by compose under the same id after a crash
    assert services["worker"]["restart"] == "unless-stopped"
    assert env_of(services["worker"])["PAYLIMIT_WORKER_INSTANCE"] == "worker"


def test_every_long_running_service_has_a_healthcheck(services: dict[str, dict[str, Any]]) -> None:
    for name, svc in services.items():
        if "simulate" not in svc.get("profiles", []):
            assert argv(svc["healthcheck"]["test"])[0] in ("CMD", "CMD-SHELL"), name


def test_the_local_override_only_swaps_images() -> None:
    # docker/compose.local.yml (no registry): same services, only images and the Dockerfile's base
    doc = yaml.safe_load((ROOT / "docker" / "compose.local.yml").read_text())
    compose_doc = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    for name, svc in doc["services"].items():
        if "image" in svc:
            assert set(svc) == {"image"}, name
            upstream = compose_doc["services"][name]["image"]
            assert svc["image"].rsplit(":", 1)[1] == upstream.rsplit(":", 1)[1], name  # the same version
        else:
            assert svc == {"build": {"args": {"PYTHON_IMAGE": "paylimit-local/python:3.11"}}}, name
