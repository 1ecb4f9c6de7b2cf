"""A usage query reaches the worker that owns the user's partition, at the URL that worker advertises."""

from __future__ import annotations

import http.server
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import unquote

import pytest
from confluent_kafka.admin import AdminClient

from paylimit.kafka import partition_for
from paylimit.runtime import processes
from paylimit.runtime.pipeline import Pipeline, ServiceProcess
from paylimit.settings import Settings, get_settings
from stream_app.views import FORWARDED_BY, owner
from tests.e2e.harness import ask_usage, produce_transactions
from tests.test_faults.helpers import consumed, wait_for


def test_owner_is_the_member_assigned_the_partition() -> None:
    distribution = {"http://a:1": {"tx": [0, 2], "other": [1]}, "http://b:2": {"tx": [1]}}
    assert [owner(distribution, "tx", p) for p in (0, 1, 2, 3)] == ["http://a:1", "http://b:2", "http://a:1", None]


def test_the_advertised_url_defaults_to_the_bind_address_and_is_checked() -> None:
    assert get_settings(web_host="127.0.0.1", web_port=7000).advertised_url == "http://127.0.0.1:7000"
    assert get_settings(web_host="::1", web_port=7000).advertised_url == "http://[::1]:7000"
    # bound to every interface, the worker is reached by its host name, never at 0.0.0.0
    assert "0.0.0.0" not in get_settings(web_host="0.0.0.0", web_port=7000).advertised_url
    given = get_settings(web_host="0.0.0.0", web_advertised_url="https://worker-2.internal:8443/")
    assert given.advertised_url == "https://worker-2.internal:8443"
    for bad in ("worker-2:6066", "ftp://worker-2/", "http://"):
        with pytest.raises(ValueError, match="http:// or https://"):
            get_settings(web_advertised_url=bad)


class Relay(http.server.ThreadingHTTPServer):
    """A real HTTP hop in front of a worker (as a port mapping or a proxy would be): passes each
    GET on to `target` and keeps the paths it was asked for and who forwarded them."""

    def __init__(self, target: str) -> None:
        self.target = target
        self.seen: list[tuple[str, str | None]] = []
        relay = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                relay.seen.append((self.path, self.headers.get(FORWARDED_BY)))
                try:
                    with urllib.request.urlopen(f"{relay.target}{self.path}", timeout=10) as resp:
                        status, body = resp.status, resp.read()
                except urllib.error.HTTPError as exc:
                    status, body = exc.code, exc.read()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        super().__init__(("127.0.0.1", 0), Handler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


@pytest.fixture
def relay() -> Iterator[Callable[[str], Relay]]:
    made: list[Relay] = []

    def make(target: str) -> Relay:
        server = Relay(target)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        made.append(server)
        return server

    yield make
    for server in made:
        server.shutdown()
        server.server_close()


def partitions_of(settings: Settings, instance: str) -> set[int]:
    admin = AdminClient(settings.kafka_client_config())
    group = admin.describe_consumer_groups([settings.app_id])[settings.app_id].result(timeout=10)
    return {tp.partition for m in group.members if m.group_instance_id == instance
            for tp in m.assignment.topic_partitions if tp.topic == settings.topic_transactions}


@pytest.mark.integration
def test_a_query_is_forwarded_to_the_owners_advertised_url(make_settings: Callable[..., Settings],
                                                           relay: Callable[[str], Relay]) -> None:
    settings = make_settings()
    pipeline = Pipeline(settings)
    try:
        first = pipeline.add_worker()
        # the second worker listens on one port and is reached through another: only the advertised
        # URL tells the first where to send the queries about users on the second's partitions
        port = processes.free_port()
        hop = relay(f"http://127.0.0.1:{port}")
        second = ServiceProcess("worker-2", "worker", settings.model_copy(update={
            "web_port": port, "worker_instance": "worker-2", "web_advertised_url": hop.url}))
        second.start()
        pipeline.workers.append(second)
        users = {f"user-{i:02d}": 1 + i % 4 for i in range(24)} | {f"ünï cödé+{i}": 2 for i in range(6)}
        produce_transactions(settings, users)
        wait_for(lambda: consumed(pipeline) == sum(users.values()), 120, "the workers to count every transaction")
        wait_for(lambda: len(partitions_of(settings, "worker-2")) in range(1, settings.partitions), 60,
                 "the two workers to share the partitions")
        theirs = partitions_of(settings, "worker-2")
        on_second = {u for u in users if partition_for(u.encode(), settings.partitions) in theirs}
        assert on_second and on_second != set(users)

        deadline = time.monotonic() + 60  # the second worker's join may still be moving partitions
        answers = {user: ask_usage(pipeline.worker_url(first), user, deadline=deadline) for user in users}
        assert all(status == 200 for status, _ in answers.values()), answers
        assert {user: body["count"] for user, (_, body) in answers.items()} == users  # today's: made just now
        # every query about a user of the second worker went through its advertised URL, forwarded by the first
        assert {unquote(path.split("/")[2]) for path, _ in hop.seen} == on_second
        assert {by for _, by in hop.seen} == {first.settings.advertised_url}
    finally:
        pipeline.stop()
