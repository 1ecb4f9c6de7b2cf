"""The notifier's small HTTP server, in a thread beside its loop, on WEB_HOST:NOTIFIER_PORT:

- `GET /healthz` 200 while the consume-and-deliver loop turns (`Notifier.alive`), else 503;
- `GET /readyz` 200 when Kafka and Redis answer, else 503 saying which does not;
- `GET /metrics` its metrics in the Prometheus text format (`NotifierCollector`).

Requests whose Host header is not one of the service's names get 421 (`paylimit.serving`).
"""

from __future__ import annotations

import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Iterator

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector

from notifier.service import Notifier
from paylimit.serving import MISDIRECTED, allowed_hosts, exposition, health, host_allowed, misdirected_text, new_registry
from paylimit.settings import Settings


class NotifierCollector(Collector):
    def __init__(self, notifier: Notifier) -> None:
        self.notifier = notifier

    def collect(self) -> Iterator[Metric]:
        stats = self.notifier.stats
        counters = {
            "delivered": ("Alerts delivered (recorded, and POSTed if a webhook is set)", stats.delivered),
            "duplicates": ("Alerts found delivered already (a replay, or another notifier's): dropped",
                           stats.duplicates_dropped),
            "invalid_records": ("Records on the alerts topic that are not an alert: skipped", stats.invalid),
            "retries": ("Delivery attempts tried again (Redis, Kafka or the webhook failed)", stats.retries),
            "fenced": ("Attempts whose lease ran out before their record: tried again", stats.fenced),
            "webhook_dead_lettered": ("Alerts the webhook gave up on: dead-lettered and recorded",
                                      stats.webhook_dead_lettered),
        }
        for name, (doc, value) in counters.items():
            yield CounterMetricFamily(f"paylimit_notifier_{name}", doc, value=value)
        failures = CounterMetricFamily("paylimit_notifier_webhook_failures", "Failed webhook POSTs, by kind",
                                       labels=["kind"])
        for kind, n in sorted(dict(stats.webhook_failures).items()):
            failures.add_metric([kind], n)
        yield failures


def notifier_registry(notifier: Notifier) -> CollectorRegistry:
    registry = new_registry()
    registry.register(NotifierCollector(notifier))
    registry.register(notifier.latency)
    return registry


def serve(notifier: Notifier, settings: Settings) -> ThreadingHTTPServer:
    """Start the server in a daemon thread; `server.server_address[1]` is its port (NOTIFIER_PORT 0:
    a free one); `server.shutdown()` stops it."""
    registry = notifier_registry(notifier)
    allowed = allowed_hosts(settings)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            host = self.headers.get("Host")
            if not host_allowed(host, allowed):
                self._send(MISDIRECTED, misdirected_text(host).encode(), "text/plain; charset=utf-8")
            elif self.path == "/metrics":
                self._send(200, *exposition(registry))
            elif self.path in ("/healthz", "/readyz"):
                if self.path == "/healthz":
                    status, body = health(None) if notifier.alive() else (503, {"alive": False})
                else:
                    ok, problems = notifier.ready()
                    status, body = health(ok, **({"not_answering": problems} if problems else {}))
                self._send(status, json.dumps(body).encode(), "application/json")
            else:
                self._send(404, b"not found\n", "text/plain; charset=utf-8")

        def _send(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass  # no access log: a scrape every few seconds would drown the notifier's own lines

    family = socket.AF_INET6 if ":" in settings.web_host else socket.AF_INET
    server_class = type("Server", (ThreadingHTTPServer,), {"address_family": family, "daemon_threads": True})
    server = server_class((settings.web_host, settings.notifier_port), Handler)
    threading.Thread(target=server.serve_forever, name="notifier-http", daemon=True).start()
    return server
