"""`paylimit dashboard`: an aiohttp server for the page, its assets and two JSON endpoints.

- `GET /` the page; `GET /static/...` its hand-written JS and CSS (nothing from a CDN).
- `GET /api/snapshot[?day=YYYY-MM-DD]` everything the page shows; the page polls it once a second.
- `GET /api/usage/{user_id}[?date=YYYY-MM-DD]` the worker's usage view, passed through.
- `GET /healthz`, `GET /readyz`, `GET /metrics` (Prometheus): its health and its sources' state.

Requests whose Host header is not one of its names get 421 (`paylimit.serving`).
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any, Iterator

from aiohttp import web
from prometheus_client import CollectorRegistry
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector as MetricsCollector

from dashboard.collector import Collector
from paylimit.serving import allowed_hosts, exposition, health, host_check, new_registry
from paylimit.settings import Settings

STATIC = Path(__file__).parent / "static"
COLLECTOR: web.AppKey[Collector] = web.AppKey("collector", Collector)
REGISTRY: web.AppKey[CollectorRegistry] = web.AppKey("registry", CollectorRegistry)


async def index(request: web.Request) -> web.FileResponse:
    return web.FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})


async def snapshot(request: web.Request) -> web.Response:
    return web.json_response(request.app[COLLECTOR].snapshot(request.query.get("day") or None))


async def usage(request: web.Request) -> web.Response:
    user_id = request.match_info["user_id"].strip()
    on = request.query.get("date") or None
    if not user_id:
        return web.json_response({"error": "a user id is required"}, status=400)
    status, body = await request.app[COLLECTOR].workers.usage(user_id, on)
    return web.json_response(body, status=status)


async def healthz(request: web.Request) -> web.Response:
    status, body = health() if request.app[COLLECTOR].running() else (503, {"alive": False})
    return web.json_response(body, status=status)


async def readyz(request: web.Request) -> web.Response:
    collector = request.app[COLLECTOR]
    status, body = health(collector.ready(), errors=collector.errors)
    return web.json_response(body, status=status)


async def metrics(request: web.Request) -> web.Response:
    body, content_type = exposition(request.app[REGISTRY])
    return web.Response(body=body, headers={"Content-Type": content_type})


class DashboardMetrics(MetricsCollector):
    def __init__(self, collector: Collector) -> None:
        self.collector = collector

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("paylimit_dashboard_source_up", "1 when the source answered the dashboard's last "
                               "poll (workers, kafka, redis, usage), else 0", labels=["source"])
        for source, error in sorted(self.collector.errors.items()):
            up.add_metric([source], int(error is None))
        yield up
        yield GaugeMetricFamily("paylimit_dashboard_tracked_users", "(user, day) pairs whose usage the dashboard "
                                "keeps", value=len(self.collector.usage))


def build_app(settings: Settings) -> web.Application:
    """The web application; the collector starts and stops with it."""
    app = web.Application(middlewares=[host_check(allowed_hosts(settings))])
    collector = Collector(settings)
    app[COLLECTOR] = collector
    app[REGISTRY] = new_registry()
    app[REGISTRY].register(DashboardMetrics(collector))

    async def lifecycle(app: web.Application) -> Any:
        await collector.start()
        yield
        await collector.stop()

    app.cleanup_ctx.append(lifecycle)
    app.router.add_get("/", index)
    app.router.add_get("/api/snapshot", snapshot)
    app.router.add_get("/api/usage/{user_id}", usage)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)
    app.router.add_static("/static/", STATIC)
    return app


async def serve_async(settings: Settings, announce: Callable[[str], None]) -> None:
    """Serve until SIGINT/SIGTERM; `announce` gets the URL once the port is bound (port 0 = a free one)."""
    runner = web.AppRunner(build_app(settings), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, settings.web_host, settings.dashboard_port)
    await site.start()
    port = runner.addresses[0][1]
    announce(f"http://{settings.web_host}:{port}/")
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stopping.set)
    try:
        await stopping.wait()
    finally:
        await runner.cleanup()


def serve(settings: Settings, announce: Callable[[str], None] = print) -> None:
    asyncio.run(serve_async(settings, announce))
