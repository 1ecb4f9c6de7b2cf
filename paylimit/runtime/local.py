"""`paylimit infra up/down/status`: the local Kafka broker and Redis server, and finding them again."""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import redis
from pydantic import SecretStr

from paylimit.errors import InfraError
from paylimit.kafka import ensure_topics, wait_for_broker
from paylimit.runtime import kafka_broker, processes, redis_server
from paylimit.settings import Settings


@dataclass
class InfraState:
    kafka_pid: int | None = None
    kafka_bootstrap: str | None = None
    redis_pid: int | None = None
    redis_url: str | None = None
    #: services left running (`paylimit demo --keep-running`), stopped by `down`: each a dict of
    #: name, pid, started (the process's start time, so a reused pid is never stopped), address
    services: list[dict[str, Any]] = field(default_factory=list)

    @property
    def kafka_running(self) -> bool:
        return processes.alive(self.kafka_pid)

    @property
    def redis_running(self) -> bool:
        return processes.alive(self.redis_pid)


def infra_root(settings: Settings) -> Path:
    return settings.home / "infra"


def _state_file(settings: Settings) -> Path:
    return infra_root(settings) / "state.json"


def read_state(settings: Settings) -> InfraState:
    path = _state_file(settings)
    if not path.exists():
        return InfraState()
    return InfraState(**json.loads(path.read_text()))


def _write_state(settings: Settings, state: InfraState) -> None:
    path = _state_file(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(asdict(state)))


def up(settings: Settings, announce: Callable[[str], None] = lambda _m: None) -> InfraState:
    """Start what is not running yet and wait until Kafka creates topics and Redis answers PING."""
    root = infra_root(settings)
    state = read_state(settings)
    if not state.kafka_running:
        kafka_broker.require_tools()  # before starting Redis: a failed `up` leaves nothing half-started
    if not state.redis_running:
        port = int(state.redis_url.rsplit(":", 1)[1].split("/")[0]) if state.redis_url else None
        state.redis_pid, state.redis_url = redis_server.start(root / "redis", port)
        _write_state(settings, state)
    if not state.kafka_running:
        kafka_broker.ensure_jars(settings, announce)
        announce("Starting the Kafka broker (KRaft)")
        state.kafka_pid, state.kafka_bootstrap = kafka_broker.start(settings, root / "kafka")
        _write_state(settings, state)
    _wait_redis(state, root)
    local = settings.model_copy(update={"kafka_bootstrap_servers": state.kafka_bootstrap})
    try:
        wait_for_broker(local, timeout=90)
        ensure_topics(local)
    except InfraError as exc:
        log = root / "kafka" / "broker.log"
        raise InfraError(f"{exc}; tail of {log}:\n{processes.tail(log)}") from None
    return state


def _wait_redis(state: InfraState, root: Path) -> None:
    assert state.redis_url
    client = redis.Redis.from_url(state.redis_url)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            if client.ping():
                return
        except redis.ConnectionError:
            if not state.redis_running:
                break
        time.sleep(0.1)
    log = root / "redis" / "redis.log"
    raise InfraError(f"Redis did not start; tail of {log}:\n{processes.tail(log)}")


def keep_services(settings: Settings, services: list[dict[str, Any]]) -> None:
    """Record services left running (name, pid, address) for `down` to stop."""
    state = read_state(settings)
    state.services = running_services(state) + [{**svc, "started": processes.started_at(svc["pid"])}
                                                for svc in services]
    _write_state(settings, state)


def running_services(state: InfraState) -> list[dict[str, Any]]:
    """The recorded services still running (the very processes: same pid, same start time)."""
    return [svc for svc in state.services if svc["started"] and processes.started_at(svc["pid"]) == svc["started"]]


def down(settings: Settings) -> InfraState:
    """Stop the recorded services, then Kafka and Redis (data stays under PAYLIMIT_HOME for the
    next `up`). The services go first, while Kafka still takes their last writes."""
    state = read_state(settings)
    processes.stop_all([svc["pid"] for svc in running_services(state)], timeout=20)
    processes.stop(state.kafka_pid)
    processes.stop(state.redis_pid)
    state.kafka_pid = state.redis_pid = None
    state.services = []
    if _state_file(settings).exists():
        _write_state(settings, state)
    return state


def stop_kafka(settings: Settings) -> None:
    processes.stop(read_state(settings).kafka_pid)


def stop_redis(settings: Settings) -> None:
    processes.stop(read_state(settings).redis_pid)


def resolve(settings: Settings) -> Settings:
    """Fill in Kafka and Redis addresses that were not given from the running local infra."""
    if settings.kafka_bootstrap_servers and settings.redis_url:
        return settings
    state = read_state(settings)
    update: dict[str, Any] = {}
    if not settings.kafka_bootstrap_servers:
        if not state.kafka_running:
            raise InfraError("no Kafka: run `paylimit infra up` or set PAYLIMIT_KAFKA_BOOTSTRAP_SERVERS")
        update["kafka_bootstrap_servers"] = state.kafka_bootstrap or ""
    if not settings.redis_url:
        if not state.redis_running:
            raise InfraError("no Redis: run `paylimit infra up` or set PAYLIMIT_REDIS_URL")
        update["redis_url"] = SecretStr(state.redis_url or "")
    return settings.model_copy(update=update)
