"""The Docker path of the tests: Kafka and Redis from testcontainers, only when a Docker engine
answers AND every image they need is already in its image store (testcontainers would pull the
missing ones, and where no registry answers that fails). Nothing here ever pulls.
"""

from __future__ import annotations

import shutil
import subprocess
from contextlib import contextmanager
from typing import Iterator

KAFKA_IMAGE = "apache/kafka:4.1.0"
REDIS_IMAGE = "redis:7"


def needed_images() -> list[str]:
    from testcontainers.core.config import testcontainers_config as config

    return [KAFKA_IMAGE, REDIS_IMAGE, *([] if config.ryuk_disabled else [config.ryuk_image])]


def images_present() -> bool:
    """A Docker engine answers and holds every image the testcontainers path needs."""
    if not shutil.which("docker"):
        return False
    try:
        return subprocess.run(["docker", "image", "inspect", *needed_images()], capture_output=True,
                              timeout=20).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


@contextmanager
def kafka_and_redis() -> Iterator[tuple[str, str]]:
    """Yield (bootstrap servers, redis url) of throwaway containers."""
    from testcontainers.kafka import KafkaContainer
    from testcontainers.redis import RedisContainer

    # retention is checked every 5 s from 5 s after the start (the broker's defaults: 5 min, 30 s), as locally
    kafka_container = (KafkaContainer(KAFKA_IMAGE).with_kraft()
                       .with_env("KAFKA_LOG_RETENTION_CHECK_INTERVAL_MS", "5000")
                       .with_env("KAFKA_LOG_INITIAL_TASK_DELAY_MS", "5000"))
    with kafka_container as kafka, RedisContainer(REDIS_IMAGE).with_command(
        "redis-server --appendonly yes --appendfsync always"
    ) as rds:
        host, port = rds.get_container_host_ip(), rds.get_exposed_port(6379)
        yield kafka.get_bootstrap_server(), f"redis://{host}:{port}/0"
