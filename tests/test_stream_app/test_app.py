"""The worker's faust edge, built without a broker."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import faust

from paylimit.settings import get_settings
from stream_app.app import build_app


def test_a_worker_with_an_instance_id_is_a_static_group_member(tmp_path: Path) -> None:
    def app_with(**overrides: Any) -> faust.App:
        return build_app(get_settings(kafka_bootstrap_servers="localhost:1", home=tmp_path, app_id="static-test",
                                      **overrides))

    assert app_with(worker_instance="worker-1").conf.consumer_group_instance_id == "worker-1"
    assert app_with().conf.consumer_group_instance_id is None  # by hand: a dynamic member


def test_faust_subscribes_to_the_transactions_but_never_acks_them(tmp_path: Path) -> None:
    """faust assigns the partitions; the processor reads them, so faust's commits (of its ack list)
    must never hold an offset of them, and its one agent on them only drops what it fetches."""
    app = build_app(get_settings(kafka_bootstrap_servers="localhost:1", home=tmp_path, app_id="acks-test",
                                 topic_transactions="tx-acks"))
    on_transactions = [agent for agent in app.agents.values() if "tx-acks" in agent.channel.get_topic_name()]
    assert [agent.name for agent in on_transactions] == ["drop-delivered"]
    assert on_transactions[0].channel.acks is False
