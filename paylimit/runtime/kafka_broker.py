"""A real Apache Kafka broker (KRaft, one node as broker and controller) from the official jars.

The jars of `org.apache.kafka:kafka_2.13` and `kafka-tools` (the command-line tools' classes, for
the Docker stand-in's `kafka-topics.sh`) and their runtime dependencies, plus a log4j2 binding,
are resolved once with Maven into `~/.cache/paylimit/kafka-<version>/libs`; storage is formatted
with Kafka's own StorageTool and the broker is started with `kafka.Kafka`.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import uuid
from pathlib import Path
from typing import Callable

from paylimit.errors import InfraError
from paylimit.runtime import processes
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
node.id=1
controller.quorum.bootstrap.servers=127.0.0.1:{controller_port}
listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}
advertised.listeners=PLAINTEXT://127.0.0.1:{port}
controller.listener.names=CONTROLLER
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
log.dirs={data}
num.partitions={partitions}
offsets.topic.replication.factor=1
offsets.topic.num.partitions=6
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=6
share.coordinator.state.topic.replication.factor=1
group.initial.rebalance.delay.ms=0
log.cleaner.backoff.ms=1000
auto.create.topics.enable=true
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


def prepare(settings: Settings, root: Path) -> tuple[Path, int]:
    """Write the config and format storage on first use; returns (properties file, client port)."""
    root.mkdir(parents=True, exist_ok=True)
    props = root / "server.properties"
    (root / "log4j2.properties").write_text(LOG4J2)
    if props.exists():
        port = int(next(ln for ln in props.read_text().splitlines() if ln.startswith("advertised.listeners")).rsplit(":", 1)[1])
        return props, port
    port, controller_port = processes.free_port(), processes.free_port()
    data = root / "data"
    props.write_text(PROPERTIES.format(port=port, controller_port=controller_port, data=data, partitions=settings.partitions))
    proc = subprocess.run(
        java_argv(settings, "kafka.tools.StorageTool", "format", "--standalone", "-t", uuid.uuid4().hex[:22],
                  "-c", str(props), log4j=root / "log4j2.properties"),
        capture_output=True, text=True,
    )
    if proc.returncode != 0:
        props.unlink()
        raise InfraError(f"Kafka storage format failed: {(proc.stdout + proc.stderr).strip().splitlines()[-1:]}")
    return props, port


def start(settings: Settings, root: Path) -> tuple[int, str]:
    """Start the broker process; returns (pid, bootstrap address). The caller waits for it."""
    props, port = prepare(settings, root)
    if not processes.port_is_free(port):
        raise InfraError(f"port {port} of the local Kafka broker is taken by another process")
    pid = processes.spawn(java_argv(settings, "kafka.Kafka", str(props), log4j=root / "log4j2.properties"), root / "broker.log")
    return pid, f"127.0.0.1:{port}"
