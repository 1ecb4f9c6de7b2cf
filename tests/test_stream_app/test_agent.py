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
from stream_app.batch import progress_key
from stream_app.writer import Writer
from stream_app.reader import TransactionReader
from stream_app.rulebook import RuleBook
from stream_app.state import decode_day


def record(tid: str, at: str, user: str = "u1", **extra: Any) -> bytes:
    body = {"transaction_id": tid, "user_id": user, "amount": "12.50", "currency": "INR",
            "status": "succeeded", "occurred_at": at, **extra}
    return json.dumps(body).encode()


@pytest.fixture
def app(tmp_path: Any) -> faust.App:
    return build_app(get_settings(kafka_bootstrap_servers="localhost:1", home=tmp_path, daily_limit=2,
                                  app_id="agent-test"))


def test_agent_alerts_once_and_dead_letters_bad_records(app: faust.App) -> None:
    sent: list[tuple[str, bytes, bytes | None]] = []

    def capture(_self: Writer, topic: str, key: bytes, value: bytes | None, partition: int = -1) -> None:
        sent.append((topic, key, value))  # faust's test_context has no broker: keep what the agent writes

    async def run() -> None:
        agent = app.agents["count-transactions"]
        # no rules stored (the rule book asks a broker): daily_count alone
        with patch.object(Writer, "send", capture), patch.object(Writer, "wait", lambda _self: None), \
                patch.object(TransactionReader, "start_offset", lambda _self, _partition: 0), \
                patch.object(RuleBook, "refresh", lambda self: self.rules):
            async with agent.test_context() as ctx:
                for i in range(4):
                    await ctx.put(key=b"u1", value=record(f"t{i}", f"2026-03-10T1{i}:00:00+05:30"))
                await ctx.put(key=b"u1", value=record("t2", "2026-03-10T12:00:00+05:30"))  # replayed crossing
                await ctx.put(key=b"u1", value=b"{not json")
                await ctx.put(key=b"u1", value=record("t9", "2026-03-10T10:00:00+05:30", currency="XYZ"))
                # the agent counts off the event loop's thread now and then; a revocation writes the
                # state to the changelog (as the commit timer does, which test_context does not run)
                key = json.dumps(progress_key(0)).encode()
                for _ in range(500):
                    await app.on_partitions_revoked.send(set())
                    if any(k == key and json.loads(v or b"{}").get("o") == 7 for _, k, v in sent):
                        break
                    await asyncio.sleep(0.01)

    asyncio.run(run())
    every = [json.loads(v or b"null") for topic, _, v in sent if topic.endswith("alerts")]
    assert [(a["crossing_transaction_id"], a["tier"]) for a in every] == [("t1", "warn"), ("t2", "alert"), ("t2", "alert")]
    alerts = [a for a in every if a["tier"] == "alert"]
    letters = [json.loads(v or b"null") for topic, _, v in sent if topic.endswith("dlq")]
    assert [a["crossing_transaction_id"] for a in alerts] == ["t2", "t2"]  # raised, then re-sent
    assert alerts[0]["alert_id"] == alerts[1]["alert_id"] and alerts[0]["count"] == 3
    assert alerts[0]["transaction_ids"] == ["t0", "t1", "t2"]
    assert [d["error"] for d in letters] == ["invalid_json", "unknown_currency"]
    # the day's value went to the changelog as faust's json codec would write it
    changelog = [(k, v) for topic, k, v in sent if topic.endswith("days-changelog")]
    day_values = {json.loads(k): json.loads(v or b"null") for k, v in changelog if b"__" not in k}
    day = decode_day(json.dumps(day_values["u1|2026-03-10"]).encode())
    assert (day.count, day.head, day.crossing) == (4, ["t0", "t1", "t2"], "t2")
    assert day.holds("t3") and not day.holds("t4")


def test_a_worker_with_an_instance_id_is_a_static_group_member(tmp_path: Any) -> None:
    def app_with(**overrides: Any) -> faust.App:
        return build_app(get_settings(kafka_bootstrap_servers="localhost:1", home=tmp_path, app_id="static-test",
                                      **overrides))

    assert app_with(worker_instance="worker-1").conf.consumer_group_instance_id == "worker-1"
    assert app_with().conf.consumer_group_instance_id is None  # by hand: a dynamic member
