"""The counting agent under faust's test_context: records in, alerts and dead letters out."""

from __future__ import annotations

import asyncio
import json
from typing import Any
from unittest.mock import patch

import faust
import pytest
from faust.topics import Topic

from paylimit.settings import get_settings
from stream_app.app import build_app
from stream_app.gaps import GapReader


def record(tid: str, at: str, user: str = "u1", **extra: Any) -> bytes:
    body = {"transaction_id": tid, "user_id": user, "amount": "12.50", "currency": "INR",
            "status": "succeeded", "occurred_at": at, **extra}
    return json.dumps(body).encode()


@pytest.fixture
def app(tmp_path: Any) -> faust.App:
    return build_app(get_settings(kafka_bootstrap_servers="localhost:1", home=tmp_path, daily_limit=2,
                                  app_id="agent-test"))


class CapturingProducer:
    """Stands in for aiokafka's producer under test_context (there is no broker): keeps the
    changelog record batches the agent writes."""

    def __init__(self) -> None:
        self.records: list[tuple[int, bytes, bytes | None]] = []

    def create_batch(self) -> "ListBatch":
        return ListBatch()

    async def send_batch(self, batch: Any, topic: str, *, partition: int) -> asyncio.Future:
        self.records += [(partition, key, value) for key, value in batch]
        fut: asyncio.Future = asyncio.get_running_loop().create_future()
        fut.set_result(None)
        return fut


class ListBatch(list):
    def append(self, *, key: bytes, value: bytes | None, timestamp: None) -> bool:  # type: ignore[override]
        super().append((key, value))
        return True


def test_agent_alerts_once_and_dead_letters_bad_records(app: faust.App) -> None:
    sent: list[tuple[str, bytes, bytes]] = []
    changelog = CapturingProducer()

    async def fake_send(self: Topic, *, key: bytes, value: bytes, **_: Any) -> Any:
        # faust's test_context has no broker: capture what the agent sends, acked at once
        sent.append((self.get_topic_name(), key, value))
        fut: asyncio.Future = asyncio.get_running_loop().create_future()
        fut.set_result(None)
        return fut

    async def run() -> None:
        agent = app.agents["count-transactions"]
        with patch.object(Topic, "send", fake_send), patch.object(
            type(app.producer), "_ensure_producer", lambda _self: changelog
        ), patch.object(GapReader, "start_offset", lambda _self, _topic, _partition: 0):
            async with agent.test_context() as ctx:
                for i in range(4):
                    await ctx.put(key=b"u1", value=record(f"t{i}", f"2026-03-10T1{i}:00:00+05:30"))
                await ctx.put(key=b"u1", value=record("t2", "2026-03-10T12:00:00+05:30"))  # replayed crossing
                await ctx.put(key=b"u1", value=b"{not json")
                await ctx.put(key=b"u1", value=record("t9", "2026-03-10T10:00:00+05:30", currency="XYZ"))

    asyncio.run(run())
    alerts = [json.loads(v) for topic, _, v in sent if topic.endswith("alerts")]
    letters = [json.loads(v) for topic, _, v in sent if topic.endswith("dlq")]
    assert [a["crossing_transaction_id"] for a in alerts] == ["t2", "t2"]  # raised, then re-sent
    assert alerts[0]["alert_id"] == alerts[1]["alert_id"] and alerts[0]["count"] == 3
    assert alerts[0]["transaction_ids"] == ["t0", "t1", "t2"]
    assert [d["error"] for d in letters] == ["invalid_json", "unknown_currency"]
    # the day's value went to the changelog as faust's json codec would write it
    day_values = {json.loads(k): json.loads(v) for _, k, v in changelog.records if b"__stream_time__" not in k}
    assert day_values["u1|2026-03-10"]["i"] == ["t0", "t1", "t2", "t3"]
    assert day_values["u1|2026-03-10"]["x"] == "t2"
