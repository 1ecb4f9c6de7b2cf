"""Real services for the tests, chosen the way `paylimit infra` chooses them.

PAYLIMIT_KAFKA_BOOTSTRAP_SERVERS / PAYLIMIT_REDIS_URL given -> use them; else a Docker engine that
already holds the images testcontainers needs (`containers.images_present`: nothing is pulled) ->
testcontainers; else -> the local runtime (real Kafka broker and redis-server processes under a
temporary PAYLIMIT_HOME), stopped at the end of the session. An engine without those images (the
compose test's, say, where no registry answers) leaves the tests on the local runtime.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from paylimit.kafka import ensure_topics
from paylimit.settings import Settings, get_settings


@pytest.fixture(scope="session")
def services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    kafka = os.environ.get("PAYLIMIT_KAFKA_BOOTSTRAP_SERVERS")
    rds = os.environ.get("PAYLIMIT_REDIS_URL")
    if kafka and rds:
        yield kafka, rds
        return
    from paylimit.runtime.containers import images_present, kafka_and_redis

    if images_present():
        with kafka_and_redis() as pair:
            yield pair
        return
    from paylimit.runtime import local

    home = tmp_path_factory.mktemp("infra")
    s = get_settings(home=home)
    state = local.up(s, announce=print)
    try:
        assert state.kafka_bootstrap and state.redis_url
        yield state.kafka_bootstrap, state.redis_url
    finally:
        local.down(s)


@pytest.fixture(scope="session")
def kafka_bootstrap(services: tuple[str, str]) -> str:
    return services[0]


@pytest.fixture(scope="session")
def redis_url(services: tuple[str, str]) -> str:
    return services[1]


@pytest.fixture
def make_settings(services: tuple[str, str], tmp_path: Path) -> Callable[..., Settings]:
    """Factory: settings on the real services with fresh topics, consumer groups and PAYLIMIT_HOME."""

    def make(**overrides: Any) -> Settings:
        tag = uuid.uuid4().hex[:10]
        values: dict[str, Any] = dict(
            kafka_bootstrap_servers=services[0],
            redis_url=services[1],
            home=tmp_path / f"home-{tag}",
            app_id=f"paylimit-test-{tag}",
            topic_transactions=f"tx-{tag}",
            topic_alerts=f"alerts-{tag}",
            topic_dlq=f"dlq-{tag}",
            topic_rules=f"rules-{tag}",
            web_port=0,
        )
        values.update(overrides)
        s = get_settings(**values)
        return ensure_topics(s)  # with the replication decided on the brokers there

    return make
