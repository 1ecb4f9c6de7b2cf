"""Real Apache Kafka brokers (KRaft, each node broker and controller) from the official jars.

The jars of `org.apache.kafka:kafka_2.13` and `kafka-tools` (the command-line tools' classes, for
the Docker stand-in's `kafka-topics.sh`) and their runtime dependencies, plus a log4j2 binding,
are resolved once with Maven into `~/.cache/paylimit/kafka-<version>/libs`; storage is formatted
with Kafka's own StorageTool and each node is started with `kafka.Kafka`. One node is a
single-voter dynamic quorum (`--standalone`); a cluster of N nodes has a static quorum of N voters
(`controller.quorum.voters`), each node with its own directory, client port and controller port.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from paylimit.errors import InfraError
from paylimit.kafka import with_replication
from paylimit.runtime import processes, security
from paylimit.settings import Settings

LOG4J_VERSION = "2.24.3"
SLF4J_VERSION = "2.0.17"

POM = """<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>paylimit</groupId><artifactId>kafka-runtime</artifactId><version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka_2.13</artifactId><version>{kafka}</version></dependency>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka-tools</artifactId><version>{kafka}</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-slf4j2-impl</artifactId><version>{log4j}</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-core</artifactId><version>{log4j}</version></dependency>
    <dependency><groupId>org.slf4j</groupId><artifactId>slf4j-api</artifactId><version>{slf4j}</version></dependency>
  </dependencies>
</project>
"""

LOG4J2 = """status = warn
appender.file.type = Console
appender.file.name = out
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.out.ref = out
logger.kafka.name = kafka
logger.kafka.level = WARN
logger.state.name = state.change.logger
logger.state.level = WARN
logger.org.name = org.apache.kafka
logger.org.level = WARN
logger.started.name = kafka.server.KafkaRaftServer
logger.started.level = INFO
"""

PROPERTIES = """process.roles=broker,controller
node.id={node_id}
{quorum}
listeners=PLAINTEXT://127.0.0.1:{port},{secure_listener}CONTROLLER://127.0.0.1:{controller_port}
advertised.listeners={secure_listener}PLAINTEXT://127.0.0.1:{port}
controller.listener.names=CONTROLLER
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT,SASL_SSL:SASL_SSL
inter.broker.listener.name=PLAINTEXT
log.dirs={data}
num.partitions={partitions}
offsets.topic.replication.factor={rf}
offsets.topic.num.partitions=6
transaction.state.log.replication.factor={rf}
transaction.state.log.min.isr={isr}
transaction.state.log.num.partitions=6
share.coordinator.state.topic.replication.factor={rf}
share.coordinator.state.topic.min.isr={isr}
default.replication.factor={rf}
min.insync.replicas={isr}
group.initial.rebalance.delay.ms=0
log.cleaner.backoff.ms=1000
# retention checked every 5 s, the first time 5 s after the start (the defaults: 5 min, 30 s):
# records go close to their topic's retention
log.retention.check.interval.ms=5000
log.initial.task.delay.ms=5000
auto.create.topics.enable=true
"""

#: the SASL_SSL listener of a secured broker (`paylimit infra up --secure`): SCRAM-SHA-512 over TLS,
#: and a client certificate signed by the local CA (mutual TLS). The brokers talk to each other and
#: to the controller on the loopback PLAINTEXT listeners; clients are given the SASL_SSL one.
SECURE_PROPERTIES = """sasl.enabled.mechanisms={mechanism}
listener.name.sasl_ssl.{mechanism_lower}.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
listener.name.sasl_ssl.ssl.keystore.type=PEM
listener.name.sasl_ssl.ssl.keystore.location={keystore}
listener.name.sasl_ssl.ssl.truststore.type=PEM
listener.name.sasl_ssl.ssl.truststore.location={ca}
listener.name.sasl_ssl.ssl.client.auth=required
"""


def libs_dir(settings: Settings) -> Path:
    return settings.cache_dir.expanduser() / f"kafka-{settings.kafka_version}" / "libs"


def require_tools() -> None:
    if not shutil.which("java"):
        raise InfraError("Java 17+ is needed for the local Kafka broker: install it (apt-get install -y openjdk-17-jre-headless) or set PAYLIMIT_KAFKA_BOOTSTRAP_SERVERS")


def ensure_jars(settings: Settings, announce: Callable[[str], None]) -> Path:
    """Resolve the Kafka jars into the per-version cache (first run only)."""
    libs = libs_dir(settings)
    if (libs / f"kafka-tools-{settings.kafka_version}.jar").exists():
        return libs
    require_tools()
    if not shutil.which("mvn"):
        raise InfraError("Maven (mvn) is needed once to download the Kafka jars: apt-get install -y maven")
    announce(f"Downloading Apache Kafka {settings.kafka_version} jars from Maven Central into {libs} (first run only, about a minute)")
    libs.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=libs.parent) as tmp:
        pom = Path(tmp) / "pom.xml"
        pom.write_text(POM.format(kafka=settings.kafka_version, log4j=LOG4J_VERSION, slf4j=SLF4J_VERSION))
        out = Path(tmp) / "libs"
        proc = subprocess.run(
            ["mvn", "-B", "-q", "-f", str(pom), "dependency:copy-dependencies",
             f"-DoutputDirectory={out}", "-DincludeScope=runtime"],
            capture_output=True, text=True,
        )
        if proc.returncode != 0:
            detail = [ln for ln in (proc.stdout + proc.stderr).splitlines() if "ERROR" in ln][:1]
            raise InfraError(f"Maven could not fetch the Kafka jars (is Maven Central reachable?): {' '.join(detail)[:300]}")
        shutil.rmtree(libs, ignore_errors=True)
        out.rename(libs)
    return libs


def java_argv(settings: Settings, main: str, *args: str, log4j: Path | None = None) -> list[str]:
    # the JVM options of Kafka's own start scripts (kafka-server-start.sh, kafka-run-class.sh): a
    # fixed heap and G1 aiming at 20 ms pauses (its default aim, 200 ms, let young collections take
    # up to 37 ms here, a stall of every client's request at once)
    argv = ["java", f"-Xmx{settings.kafka_heap}", f"-Xms{settings.kafka_heap}", "-XX:+UseG1GC",
            "-XX:MaxGCPauseMillis=20", "-XX:InitiatingHeapOccupancyPercent=35", "-XX:+ExplicitGCInvokesConcurrent",
            "-Djava.awt.headless=true"]
    if log4j:
        argv.append(f"-Dlog4j2.configurationFile={log4j}")
    return [*argv, "-cp", f"{libs_dir(settings)}/*", main, *args]


@dataclass(frozen=True)
class Node:
    """One KRaft node of the local cluster: its directory (config, data, log) and ports."""

    id: int
    root: Path
    port: int
    controller_port: int
    secure_port: int | None = None  # the SASL_SSL listener's, on a secured cluster

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def client_address(self) -> str:
        """Where clients connect: the SASL_SSL listener on a secured cluster."""
        return f"127.0.0.1:{self.secure_port}" if self.secure_port else self.address

    @property
    def log(self) -> Path:
        return self.root / "broker.log"


def node_dirs(root: Path, brokers: int, secure: bool = False) -> list[Path]:
    """A directory per node. Each cluster size has its own: a single node's metadata (a quorum of
    one) cannot join a quorum of three; so has a secured cluster (its users are in its metadata).
    One broker keeps the layout it always had."""
    name = "kafka-secure" if secure else "kafka"
    if brokers == 1:
        return [root / name]
    return [root / f"{name}-{brokers}" / f"broker-{i}" for i in range(1, brokers + 1)]


def secrets_dir(root: Path) -> Path:
    return root / "secure"


def prepare(settings: Settings, root: Path, brokers: int = 1, secure: bool = False) -> list[Node]:
    """Write the configs and format storage on first use; the nodes of a cluster of `brokers`.
    Secured: with a SASL_SSL listener each, and the SCRAM user (`security`) added at format time."""
    dirs = node_dirs(root, brokers, secure)
    for d in dirs:
        d.mkdir(parents=True, exist_ok=True)
        (d / "log4j2.properties").write_text(LOG4J2)
    if configured := read_nodes(root, brokers, secure):
        return configured
    nodes = [Node(i, d, processes.free_port(), processes.free_port(), processes.free_port() if secure else None)
             for i, d in enumerate(dirs, start=1)]
    if brokers == 1:
        quorum = f"controller.quorum.bootstrap.servers=127.0.0.1:{nodes[0].controller_port}"
        format_args = ["--standalone"]
    else:
        voters = ",".join(f"{n.id}@127.0.0.1:{n.controller_port}" for n in nodes)
        quorum, format_args = f"controller.quorum.voters={voters}", []
    extra = ""
    if secure:
        secured = security.ensure(secrets_dir(root))
        extra = SECURE_PROPERTIES.format(mechanism=security.MECHANISM, mechanism_lower=security.MECHANISM.lower(),
                                         keystore=secured.broker_pem, ca=secured.ca)
        format_args.append(f"--add-scram={security.MECHANISM}=[name={secured.username},password={secured.password}]")
    replication = with_replication(settings, brokers)
    cluster_id = uuid.uuid4().hex[:22]
    formats = []
    for n in nodes:
        props = n.root / "server.properties"
        listener = f"SASL_SSL://127.0.0.1:{n.secure_port}," if n.secure_port else ""
        props.write_text(PROPERTIES.format(node_id=n.id, quorum=quorum, port=n.port, controller_port=n.controller_port,
                                           secure_listener=listener, data=n.root / "data", partitions=settings.partitions,
                                           rf=replication.replication_factor, isr=replication.min_insync_replicas)
                         + extra)
        # the nodes format at once: a JVM start each, on shared cores
        formats.append(subprocess.Popen(
            java_argv(settings, "kafka.tools.StorageTool", "format", *format_args, "-t", cluster_id, "-c", str(props),
                      log4j=n.root / "log4j2.properties"),
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
    outputs = [(proc.communicate()[0], proc.returncode) for proc in formats]
    failed = [out for out, code in outputs if code != 0]
    if failed:
        for n in nodes:
            (n.root / "server.properties").unlink()
        raise InfraError(f"Kafka storage format failed: {failed[0].strip().splitlines()[-1:]}")
    return nodes


def read_nodes(root: Path, brokers: int, secure: bool = False) -> list[Node]:
    """The nodes of a cluster of `brokers` as configured by `prepare`; [] if it never was."""
    dirs = node_dirs(root, brokers, secure)
    return [_read_node(d) for d in dirs] if all((d / "server.properties").exists() for d in dirs) else []


def _read_node(root: Path) -> Node:
    props = dict(ln.split("=", 1) for ln in (root / "server.properties").read_text().splitlines() if "=" in ln)
    ports = {name: int(addr.rsplit(":", 1)[1]) for name, addr in
             (listener.split("://") for listener in props["listeners"].split(","))}
    return Node(int(props["node.id"]), root, ports["PLAINTEXT"], ports["CONTROLLER"], ports.get("SASL_SSL"))


def start(settings: Settings, node: Node) -> int:
    """Start one node's process; returns its pid. The caller waits for it."""
    if not processes.port_is_free(node.port):
        raise InfraError(f"port {node.port} of the local Kafka broker {node.id} is taken by another process")
    return processes.spawn(java_argv(settings, "kafka.Kafka", str(node.root / "server.properties"),
                                     log4j=node.root / "log4j2.properties"), node.log)


def active_controller(nodes: list[Node]) -> int | None:
    """The node id of the quorum's leader (the active controller), from the election state the nodes
    keep on disk (`quorum-state`: the leader each last knew, with its epoch); the highest epoch wins.
    None before the first election."""
    best: tuple[int, int] | None = None
    for n in nodes:
        try:
            state = json.loads((n.root / "data" / "__cluster_metadata-0" / "quorum-state").read_text())
        except (OSError, ValueError):
            continue
        leader, epoch = state.get("leaderId", -1), state.get("leaderEpoch", -1)
        if leader >= 0 and (best is None or epoch > best[1]):
            best = (leader, epoch)
    return best[0] if best else None
