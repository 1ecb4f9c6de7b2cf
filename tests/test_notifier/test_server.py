"""The notifier's HTTP server (`notifier.server`) on the real Kafka; the rest of it (metrics,
health, the Host check on a running `paylimit notifier`) is in tests/test_operations.py."""

from __future__ import annotations

import json
import threading
import uuid
from pathlib import Path

import pytest

from notifier.server import serve
from notifier.service import Notifier
from paylimit.runtime.processes import free_port
from paylimit.settings import get_settings
from tests.test_operations import get, until

pytestmark = pytest.mark.integration


def test_a_notifier_without_redis_is_not_ready(tmp_path: Path, kafka_bootstrap: str) -> None:
    settings = get_settings(kafka_bootstrap_servers=kafka_bootstrap, redis_url=f"redis://127.0.0.1:{free_port()}/0",
                            home=tmp_path, notifier_port=0, app_id=f"paylimit-ops-{uuid.uuid4().hex[:8]}")
    notifier = Notifier(settings)
    server = serve(notifier, settings)
    running = threading.Thread(target=notifier.run, daemon=True)
    running.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/readyz"
        # 503 at once ("not started" until its loop opens its clients), then for Redis, not for Kafka
        body = until(lambda: (lambda got: got[0] == 503 and '"redis"' in got[2] and got[2])(get(url)),
                     "Redis reported not answering", timeout=30)
        assert set(json.loads(body)["not_answering"]) == {"redis"}, body
        assert get(url.replace("readyz", "healthz"))[0] == 200  # alive all the same: its loop turns
    finally:
        server.shutdown()
        notifier.stop()
        running.join(timeout=30)
