"""What the dashboard reads over the network: the workers' HTTP views and the shared notifications record."""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import quote

import aiohttp
import redis.asyncio as aioredis

from paylimit.contracts import Notification
from paylimit.settings import Settings

TIMEOUT = aiohttp.ClientTimeout(total=2)


def worker_urls(settings: Settings) -> list[str]:
    return [u.strip().rstrip("/") for u in settings.worker_urls.split(",") if u.strip()]


def add_metrics(total: dict[str, Any], one: dict[str, Any]) -> dict[str, Any]:
    """Sum one worker's /stats into `total` (numbers add, nested counters add per key)."""
    for key, value in one.items():
        if isinstance(value, dict):
            bucket = total.setdefault(key, {})
            for k, n in value.items():
                bucket[k] = bucket.get(k, 0) + n
        elif isinstance(value, (int, float)):
            total[key] = total.get(key, 0) + value
    return total


class Workers:
    """The stream workers' HTTP views (`/stats`, `/users/{id}/usage`); a session opened in start()."""

    def __init__(self, settings: Settings) -> None:
        self.urls = worker_urls(settings)
        self.session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        self.session = aiohttp.ClientSession(timeout=TIMEOUT)

    async def stop(self) -> None:
        if self.session:
            await self.session.close()

    async def _get(self, url: str, params: dict[str, str] | None = None) -> tuple[int, Any]:
        assert self.session is not None
        async with self.session.get(url, params=params) as resp:
            return resp.status, await resp.json(content_type=None)

    async def metrics(self) -> tuple[dict[str, Any], int]:
        """The record accounting summed over the workers that answer, and how many answered."""
        results = await asyncio.gather(*(self._get(f"{u}/stats") for u in self.urls), return_exceptions=True)
        total: dict[str, Any] = {}
        answered = 0
        for r in results:
            if isinstance(r, tuple) and r[0] == 200 and isinstance(r[1], dict):
                add_metrics(total, r[1])
                answered += 1
            elif isinstance(r, BaseException) and not isinstance(r, (aiohttp.ClientError, asyncio.TimeoutError, ValueError)):
                raise r
        return total, answered

    async def usage(self, user_id: str, on: str | None = None) -> tuple[int, dict[str, Any]]:
        """(HTTP status, body) of the first worker that answers other than 503: any worker answers
        for any user (it forwards the query to the user's), but one may be down or mid-rebalance."""
        params = {"date": on} if on else None
        unavailable: tuple[int, dict[str, Any]] | None = None
        last: Exception | None = None
        for url in self.urls:
            try:
                status, body = await self._get(f"{url}/users/{quote(user_id, safe='')}/usage", params)
            except (aiohttp.ClientError, asyncio.TimeoutError, ValueError) as exc:
                last = exc
                continue
            if status != 503:
                return status, body
            unavailable = status, body
        return unavailable or (503, {"error": f"no worker answered ({type(last).__name__ if last else 'no worker URLs'})"})


def stream_key(settings: Settings) -> str:
    """The shared record of delivered notifications (a Redis stream every notifier adds to; `paylimit.notification_record`)."""
    return f"{settings.app_id}:notifications"


class NotificationFeed:
    """Tails the notifications stream: the last `backlog` entries first, then each new one."""

    def __init__(self, settings: Settings, backlog: int = 500) -> None:
        self.settings = settings
        self.key = stream_key(settings)
        self.backlog = backlog
        self.last_id: str | None = None
        self.client: aioredis.Redis | None = None

    async def start(self) -> None:
        if not self.settings.redis_url:
            raise RuntimeError("Redis URL is not set (PAYLIMIT_REDIS_URL)")
        self.client = aioredis.Redis.from_url(self.settings.redis_url.get_secret_value(), decode_responses=True,
                                              socket_timeout=5, socket_connect_timeout=2)

    async def stop(self) -> None:
        if self.client:
            await self.client.aclose()

    async def poll(self) -> list[Notification]:
        """The notifications added since the last poll, oldest first."""
        assert self.client is not None
        entries: list[Any]
        if self.last_id is None:
            entries = list(reversed(await self.client.xrevrange(self.key, count=self.backlog) or []))
        else:
            entries = await self.client.xrange(self.key, min=f"({self.last_id}", count=1000) or []
        if not entries and self.last_id is None:
            self.last_id = "0-0"
        out = []
        for entry_id, fields in entries:
            self.last_id = str(entry_id)
            if fields and "notification" in fields:
                out.append(Notification.model_validate_json(fields["notification"]))
        return out
