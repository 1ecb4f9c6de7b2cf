"""Smoke test on the real Redis: it answers, stores, and persists with AOF."""

from __future__ import annotations

import uuid

import pytest
import redis

pytestmark = pytest.mark.integration


def test_set_get_and_appendonly(redis_url: str) -> None:
    with redis.Redis.from_url(redis_url, decode_responses=True) as client:
        assert client.ping()
        key = f"smoke:{uuid.uuid4().hex}"
        try:
            assert client.set(key, "value", ex=60)
            assert client.get(key) == "value"
        finally:
            client.delete(key)
        assert client.config_get("appendonly") == {"appendonly": "yes"}
