"""What every service's HTTP server shares: the Host check, a Prometheus registry of its own and
its exposition, and the health answers (`/healthz`, `/readyz`).

The Host check: a server answers only requests whose Host header names it (loopback names, its
bind address, the worker's advertised host, PAYLIMIT_ALLOWED_HOSTS), else 421. A web page on
another site can make a browser send requests to 127.0.0.1, and a DNS name rebound to 127.0.0.1
then reads the answers; the Host header still says the other site's name.
"""

from __future__ import annotations

from typing import Awaitable, Callable, Iterable
from urllib.parse import urlsplit

from aiohttp import web
from aiohttp.typedefs import Middleware
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, ProcessCollector, disable_created_metrics, generate_latest

from paylimit.settings import Settings

LOOPBACK = frozenset({"localhost", "127.0.0.1", "::1"})
ANY_HOST = "*"
EVERY_INTERFACE = frozenset({"0.0.0.0", "::", ""})
MISDIRECTED = 421  # RFC 9110: this server does not answer for that host name

# no `*_created` series beside every histogram: a restart shows in process_start_time_seconds
disable_created_metrics()


def allowed_hosts(settings: Settings, *more: str | None) -> frozenset[str]:
    """The host names a service's server answers for: loopback, its bind address (unless it binds
    every interface), `more` (hosts or URLs), PAYLIMIT_ALLOWED_HOSTS."""
    names = set(LOOPBACK)
    if settings.web_host not in EVERY_INTERFACE:
        names.add(settings.web_host)
    for item in more:
        if item:
            names.add(urlsplit(item).hostname or item if "://" in item else item)
    names.update(h.strip() for h in settings.allowed_hosts.split(",") if h.strip())
    return frozenset(n.lower().strip("[]") for n in names)


def host_allowed(header: str | None, allowed: Iterable[str]) -> bool:
    """Does a request's Host header (`name[:port]`, `[v6]:port`) name one of `allowed`?"""
    if ANY_HOST in allowed:
        return True
    if not header:
        return False
    try:
        parts = urlsplit("//" + header.strip())
        parts.port  # noqa: B018 (raises ValueError on a port that is not a number in range)
    except ValueError:  # a bad port or bracket: not a name of ours
        return False
    return parts.hostname is not None and parts.hostname in allowed


def misdirected_text(header: str | None) -> str:
    return f"this server does not answer for host {header!r} (PAYLIMIT_ALLOWED_HOSTS)\n"


def host_check(allowed: frozenset[str]) -> Middleware:
    """An aiohttp middleware: 421 for a request whose Host is not in `allowed`."""

    @web.middleware
    async def check(request: web.Request,
                    handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> web.StreamResponse:
        header = request.headers.get("Host")
        if not host_allowed(header, allowed):
            return web.Response(status=MISDIRECTED, text=misdirected_text(header))
        return await handler(request)

    return check


def new_registry() -> CollectorRegistry:
    """A registry of the service's own (never prometheus_client's global one, so several services
    in one process, as in the tests, keep their metrics apart), with the process's metrics:
    `process_start_time_seconds` changes when a service restarted (crashed)."""
    registry = CollectorRegistry()
    ProcessCollector(registry=registry)
    return registry


def exposition(registry: CollectorRegistry) -> tuple[bytes, str]:
    """(body, content type) of the registry's metrics in the Prometheus text format."""
    return generate_latest(registry), CONTENT_TYPE_LATEST


def health(ready: bool | None = None, **detail: object) -> tuple[int, dict[str, object]]:
    """(status, body) of a health answer: `/healthz` (ready None: the process answers, so its loop
    turns) or `/readyz` (200 when ready, else 503)."""
    if ready is None:
        return 200, {"alive": True, **detail}
    return (200 if ready else 503), {"ready": ready, **detail}
