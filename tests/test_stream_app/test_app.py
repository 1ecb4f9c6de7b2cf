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
