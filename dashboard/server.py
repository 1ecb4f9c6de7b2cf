"""`paylimit dashboard`: an aiohttp server for the page, its assets and two JSON endpoints.

- `GET /` the page; `GET /static/...` its hand-written JS and CSS (nothing from a CDN).
- `GET /api/snapshot[?day=YYYY-MM-DD]` everything the page shows; the page polls it once a second.
- `GET /api/usage/{user_id}[?date=YYYY-MM-DD]` the worker's usage view, passed through.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aiohttp import web

from dashboard.collector import Collector
from paylimit.settings import Settings

STATIC = Path(__file__).parent / "static"
COLLECTOR: web.AppKey[Collector] = web.AppKey("collector", Collector)


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


def build_app(settings: Settings) -> web.Application:
    """The web application; the collector starts and stops with it."""
    app = web.Application()
    collector = Collector(settings)
    app[COLLECTOR] = collector

    async def lifecycle(app: web.Application) -> Any:
        await collector.start()
        yield
        await collector.stop()

    app.cleanup_ctx.append(lifecycle)
    app.router.add_get("/", index)
    app.router.add_get("/api/snapshot", snapshot)
    app.router.add_get("/api/usage/{user_id}", usage)
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
