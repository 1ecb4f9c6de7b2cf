"""`paylimit infra up/down/status`: the local Kafka brokers and Redis server, and finding them again."""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import redis
from confluent_kafka import KafkaException
from pydantic import SecretStr

from paylimit.errors import InfraError
from paylimit.kafka import ClusterWatch, ensure_topics, wait_for_broker, with_replication
from paylimit.runtime import kafka_broker, processes, redis_server, security
from paylimit.settings import Settings


@dataclass
class InfraState:
    kafka_pids: list[int | None] = field(default_factory=list)  # node id i is kafka_pids[i - 1]
    kafka_bootstrap: str | None = None  # every node's address, in node order
    redis_pid: int | None = None
    redis_url: str | None = None
    #: services left running (`paylimit demo --keep-running`), stopped by `down`: each a dict of
    #: name, pid, identity (`processes.identity`, so a reused pid is never stopped), address
    services: list[dict[str, Any]] = field(default_factory=list)
    #: started by `infra up --secure`: Kafka's clients on SASL_SSL (`security`), Redis with a password
    secure: bool = False
    #: str(pid) -> `processes.identity` of the Kafka and Redis processes started: a pid is only
    #: taken for theirs (and signalled) while it is still that very process
    procs: dict[str, dict[str, Any]] = field(default_factory=dict)

    def ours(self, pid: int | None) -> bool:
        return processes.is_same(pid, self.procs.get(str(pid)))

    def remember(self, pid: int) -> int:
        """Record the identity of a process just started; returns its pid."""
        found = processes.identity(pid)
        if found is not None:
            self.procs[str(pid)] = found
        return pid

    @property
    def brokers(self) -> int:
        return len(self.kafka_pids)

    @property
    def kafka_running(self) -> bool:
        """At least one node runs (a cluster serves with one of three down)."""
        return any(self.ours(pid) for pid in self.kafka_pids)

    def broker_running(self, node_id: int) -> bool:
        return self.ours(self.kafka_pids[node_id - 1])

    @property
    def redis_running(self) -> bool:
        return self.ours(self.redis_pid)


def infra_root(settings: Settings) -> Path:
    return settings.home / "infra"


def _state_file(settings: Settings) -> Path:
    return infra_root(settings) / "state.json"


def read_state(settings: Settings) -> InfraState:
    path = _state_file(settings)
    if not path.exists():
        return InfraState()
    data = json.loads(path.read_text())
    if "kafka_pid" in data:  # written by a paylimit of one broker only
        data["kafka_pids"] = [data.pop("kafka_pid")]
    return InfraState(**data)


def _write_state(settings: Settings, state: InfraState) -> None:
    path = _state_file(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600)  # the Redis URL of a secured infra holds its password
    path.write_text(json.dumps(asdict(state)))


def up(settings: Settings, announce: Callable[[str], None] = lambda _m: None, brokers: int | None = None,
       secure: bool | None = None) -> InfraState:
    """Start what is not running yet and wait until Kafka creates topics and Redis answers PING.

    `brokers`: the size of the Kafka cluster (default: the one that ran last, else 1); a running
    cluster of another size is an error. `secure` (default: as it ran last): Kafka's clients
    connect with SCRAM-SHA-512 and a client certificate over TLS, Redis takes a password."""
    root = infra_root(settings)
    state = read_state(settings)
    n = brokers or state.brokers or 1
    secure = state.secure if secure is None else secure
    if state.kafka_running and n != state.brokers:
        raise InfraError(f"a local Kafka of {state.brokers} broker(s) is running: `paylimit infra down` first, "
                         f"then `paylimit infra up --brokers {n}`")
    if (state.kafka_running or state.redis_running) and secure != state.secure:
        raise InfraError(f"the local infra runs {'secured' if state.secure else 'unsecured'}: `paylimit infra down` "
                         f"first, then `paylimit infra up{' --secure' if secure else ''}`")
    if not state.kafka_running:
        kafka_broker.require_tools()  # before starting Redis: a failed `up` leaves nothing half-started
    secrets = security.ensure(kafka_broker.secrets_dir(root)) if secure else None
    state.secure = secure
    if not state.redis_running:
        port = int(state.redis_url.rsplit(":", 1)[1].split("/")[0]) if state.redis_url else None
        state.redis_pid, state.redis_url = redis_server.start(root / "redis", port,
                                                              secrets.redis_password if secrets else None)
        state.remember(state.redis_pid)
        _write_state(settings, state)
    if n != state.brokers:
        state.kafka_pids = [None] * n
    if not all(state.broker_running(i) for i in range(1, n + 1)):
        kafka_broker.ensure_jars(settings, announce)
        nodes = kafka_broker.prepare(settings, root, n, secure)
        announce("Starting the Kafka broker (KRaft)" if n == 1 else f"Starting {n} Kafka brokers (KRaft)")
        for node in nodes:
            if not state.broker_running(node.id):
                state.kafka_pids[node.id - 1] = state.remember(kafka_broker.start(settings, node))
                _write_state(settings, state)
        state.kafka_bootstrap = ",".join(node.client_address for node in nodes)
        _write_state(settings, state)
    _wait_redis(state, root)
    # through the listener clients use: a secured one that refuses its own user fails `up`
    local = client_settings(settings, state)
    try:
        wait_for_broker(local, timeout=90, brokers=n)
        ensure_topics(with_replication(local, n))
    except InfraError as exc:
        log = kafka_broker.node_dirs(root, n, secure)[0] / "broker.log"
        raise InfraError(f"{exc}; tail of {log}:\n{processes.tail(log)}") from None
    return state


def nodes(settings: Settings) -> list[kafka_broker.Node]:
    """The nodes of the local cluster that ran last (configured; running or not)."""
    state = read_state(settings)
    return kafka_broker.read_nodes(infra_root(settings), state.brokers, state.secure)


def stop_broker(settings: Settings, node_id: int) -> None:
    """kill -9 one node of the local cluster: no controlled shutdown, its port refuses connections."""
    state = _node_state(settings, node_id)
    pid = state.kafka_pids[node_id - 1]
    if state.ours(pid):
        assert pid is not None
        processes.kill9(pid)
    state.kafka_pids[node_id - 1] = None
    _write_state(settings, state)


def start_broker(settings: Settings, node_id: int, timeout: float = 90) -> None:
    """Start one stopped node again (same directory and ports) and wait until the cluster lists it."""
    state = _node_state(settings, node_id)
    if state.broker_running(node_id):
        return
    node = kafka_broker.prepare(settings, infra_root(settings), state.brokers, state.secure)[node_id - 1]
    state.kafka_pids[node_id - 1] = state.remember(kafka_broker.start(settings, node))
    _write_state(settings, state)
    watch = ClusterWatch(client_settings(settings, state, node.client_address), timeout=2)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and state.broker_running(node_id):
        try:
            if node_id in watch.health().brokers:
                return
        except KafkaException:
            pass  # not answering yet
        time.sleep(0.3)
    raise InfraError(f"Kafka broker {node_id} did not rejoin within {timeout:.0f}s; tail of {node.log}:\n"
                     f"{processes.tail(node.log)}")


def client_settings(settings: Settings, state: InfraState, bootstrap: str | None = None) -> Settings:
    """`settings` on the local cluster (or one node of it, `bootstrap`) as a client of paylimit's
    own: on the secured listener with the local user's credentials if it runs secured."""
    secrets = security.load(kafka_broker.secrets_dir(infra_root(settings))) if state.secure else None
    return settings.model_copy(update={"kafka_bootstrap_servers": bootstrap or state.kafka_bootstrap,
                                       **(secrets.client_settings() if secrets else {})})


def _node_state(settings: Settings, node_id: int) -> InfraState:
    state = read_state(settings)
    if not 1 <= node_id <= state.brokers:
        raise InfraError(f"no local Kafka broker {node_id}: the local cluster has "
                         f"{state.brokers} (`paylimit infra up --brokers N`)")
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
    state.services = running_services(state) + [{**svc, "identity": processes.identity(svc["pid"])}
                                                for svc in services]
    _write_state(settings, state)


def running_services(state: InfraState) -> list[dict[str, Any]]:
    """The recorded services still running (the very processes: same pid, same start and program)."""
    return [svc for svc in state.services if processes.is_same(svc["pid"], svc.get("identity"))]


def down(settings: Settings) -> InfraState:
    """Stop the recorded services, then Kafka and Redis (data stays under PAYLIMIT_HOME for the
    next `up`). The services go first, while Kafka still takes their last writes."""
    state = read_state(settings)
    processes.stop_all([svc["pid"] for svc in running_services(state)], timeout=20)
    # a pid whose process is no longer the one started (pid reuse, a reboot) is never signalled
    processes.stop_all([pid for pid in [*state.kafka_pids, state.redis_pid] if state.ours(pid)])
    state.kafka_pids = [None] * state.brokers
    state.redis_pid = None
    state.services = []
    state.procs = {}
    if _state_file(settings).exists():
        _write_state(settings, state)
    return state


def stop_kafka(settings: Settings) -> None:
    state = read_state(settings)
    processes.stop_all([pid for pid in state.kafka_pids if state.ours(pid)])


def stop_redis(settings: Settings) -> None:
    state = read_state(settings)
    if state.ours(state.redis_pid):
        processes.stop(state.redis_pid)


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
        secrets = security.load(kafka_broker.secrets_dir(infra_root(settings))) if state.secure else None
        if secrets:  # the secured listener's settings, except those given (a password to try, say)
            update.update({k: v for k, v in secrets.client_settings().items() if k not in settings.model_fields_set})
    if not settings.redis_url:
        if not state.redis_running:
            raise InfraError("no Redis: run `paylimit infra up` or set PAYLIMIT_REDIS_URL")
        update["redis_url"] = SecretStr(state.redis_url or "")
    resolved = settings.model_copy(update=update)
    # the local cluster's size, not the brokers up at this moment, decides the replication
    return with_replication(resolved, state.brokers) if "kafka_bootstrap_servers" in update else resolved
