"""The Docker path: Kafka and Redis from testcontainers, when a Docker engine is reachable."""

from __future__ import annotations

import shutil
import subprocess
from contextlib import contextmanager
from typing import Iterator


def docker_available() -> bool:
    if not shutil.which("docker"):
        return False
    try:
        return subprocess.run(["docker", "info"], capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


@contextmanager
def kafka_and_redis(kafka_image: str = "apache/kafka:4.1.0") -> Iterator[tuple[str, str]]:
    """Yield (bootstrap servers, redis url) of throwaway containers."""
    from testcontainers.kafka import KafkaContainer
    from testcontainers.redis import RedisContainer

    with KafkaContainer(kafka_image).with_kraft() as kafka, RedisContainer("redis:7").with_command(
        "redis-server --appendonly yes --appendfsync always"
    ) as rds:
        host, port = rds.get_container_host_ip(), rds.get_exposed_port(6379)
        yield kafka.get_bootstrap_server(), f"redis://{host}:{port}/0"
