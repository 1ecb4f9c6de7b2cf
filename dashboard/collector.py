"""Polls every source on its own short loop and keeps what the page shows: a two-minute history
of rates, lag and alert latency, the latest notifications, and today's usage of active users.

Top users: the worker has no "list users" view (and the dashboard adds none to another service),
so the users come from what the dashboard can see: the (user, local day) pairs of the succeeded
transactions on the topic (last 48 h) and the notified users. Their counts come from the worker's
usage view (`?date=`), asked again whenever a pair has a new transaction, a few times more in the
seconds after it (`RECHECK_AFTER`: the workers may not have counted it yet), and at least every
`STALE_S`; at most `USAGE_PER_TICK` a second. The panels show one day: the one picked on the
page, or today, or (replaying past days) the latest day seen.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter, deque
from collections.abc import Awaitable, Callable
from datetime import datetime, timezone
from typing import Any

import aiohttp
import redis
from confluent_kafka import KafkaException

from dashboard import stats
from dashboard.offsets import ActiveUsers, KafkaProbe, Offsets, UserDay
from dashboard.sources import NotificationFeed, Workers
from paylimit.errors import InfraError
from paylimit.settings import Settings

HISTORY = 120  # samples, one a second
USAGE_PER_TICK = 50
STALE_S = 30.0
#: a pair with a new transaction is asked again this many seconds after each ask: the first answer
#: may come before the workers counted the transaction (a worker still starting, or behind)
RECHECK_AFTER = (1.0, 1.0, 2.0, 4.0, 8.0)
SOURCE_ERRORS = (aiohttp.ClientError, asyncio.TimeoutError, redis.RedisError, KafkaException, OSError, ValueError)


def _notification_row(n: Any) -> dict[str, Any]:
    row = n.model_dump(mode="json", exclude={"transaction_ids"})
    row["latency_ms"] = round((n.delivered_at - n.detected_at).total_seconds() * 1000, 1)
    row["delivered_at_dt"], row["detected_at_dt"] = n.delivered_at, n.detected_at
    return row


class Collector:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.workers = Workers(settings)
        self.feed = NotificationFeed(settings)
        self.probe = KafkaProbe(settings)
        self.active = ActiveUsers(settings)
        self.errors: dict[str, str | None] = {"workers": None, "kafka": None, "redis": None, "usage": None}
        self.series: dict[str, deque[Any]] = {k: deque(maxlen=HISTORY) for k in
                                              ("t", "in_rate", "processed_rate", "worker_lag", "notifier_lag", "p50", "p99")}
        self.notifications: deque[dict[str, Any]] = deque(maxlen=500)
        # the pairs whose usage is shown, the latest answered kept (PAYLIMIT_DASHBOARD_USERS)
        self.usage: stats.LRU[UserDay, tuple[float, dict[str, Any]]] = stats.LRU(settings.dashboard_users)
        self.pending: set[UserDay] = set()  # pairs whose usage changed since it was last asked for
        self.recheck: dict[UserDay, tuple[float, int]] = {}  # pair -> (when to ask again, re-asks so far)
        self.metrics: dict[str, Any] = {}
        self.offsets: Offsets | None = None
        self._prev_in: tuple[float, int] | None = None
        self._prev_done: tuple[float, int] | None = None
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        await self.workers.start()
        await self.feed.start()
        self.probe.start()
        self.active.start()
        for name, interval, step in (("redis", 0.5, self._poll_feed), ("kafka", 1.0, self._sample),
                                     ("usage", 1.0, self._refresh_usage)):
            self._tasks.append(asyncio.create_task(self._loop(name, interval, step)))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await asyncio.get_running_loop().run_in_executor(None, self.active.stop)
        await asyncio.get_running_loop().run_in_executor(None, self.probe.stop)
        await self.workers.stop()
        await self.feed.stop()

    def running(self) -> bool:
        """Its polling loops run (none ended on an error it did not expect)."""
        return bool(self._tasks) and not any(task.done() for task in self._tasks)

    def ready(self) -> bool:
        """It has sampled once, and Kafka and Redis answered its last polls."""
        return bool(self.series["t"]) and self.errors["kafka"] is None and self.errors["redis"] is None

    async def _loop(self, name: str, interval: float, step: Callable[[], Awaitable[None]]) -> None:
        while True:
            started = time.monotonic()
            try:
                await asyncio.wait_for(step(), timeout=10)
                if name != "kafka":  # _sample sets the kafka and workers errors itself
                    self.errors[name] = None
            except SOURCE_ERRORS as exc:
                self.errors[name] = f"{type(exc).__name__}: {exc}"[:200]
            await asyncio.sleep(max(0.05, interval - (time.monotonic() - started)))

    async def _poll_feed(self) -> None:
        for n in await self.feed.poll():
            self.notifications.append(_notification_row(n))
            self.pending.add((n.user_id, n.local_date.isoformat()))

    async def _sample(self) -> None:
        """One point of history: events in/processed per second, lag, alert latency."""
        now = time.monotonic()
        metrics, answered = await self.workers.metrics()
        self.errors["workers"] = None if answered else "no worker answered /stats"
        if answered:
            self.metrics = metrics
        try:
            self.offsets = await asyncio.get_running_loop().run_in_executor(None, self.probe.offsets)
            self.errors["kafka"] = None
        except KafkaException as exc:
            self.errors["kafka"] = str(exc.args[0])[:200]
        except InfraError as exc:  # a group's lag not read (paylimit.kafka.LagReader)
            self.errors["kafka"] = str(exc)[:200]
        in_rate = done_rate = None
        if self.offsets:
            point = (now, self.offsets.produced)
            in_rate, self._prev_in = stats.rate(self._prev_in, point), point
        if answered:
            point = (now, int(metrics.get("consumed", 0)))
            done_rate, self._prev_done = stats.rate(self._prev_done, point), point
        lat = stats.latencies_ms(self.notifications, datetime.now(timezone.utc))
        for key, value in (("t", time.time()), ("in_rate", in_rate), ("processed_rate", done_rate),
                           ("worker_lag", self.offsets.worker_lag if self.offsets else None),
                           ("notifier_lag", self.offsets.notifier_lag if self.offsets else None),
                           ("p50", stats.percentile(lat, 50)), ("p99", stats.percentile(lat, 99))):
            self.series[key].append(value)

    def _wanted_users(self) -> list[UserDay]:
        now = time.monotonic()
        wanted = sorted(self.pending | self.active.take_dirty())
        # at most PAYLIMIT_DASHBOARD_USERS wait; the others are asked after their next transaction
        due, self.pending = wanted[:USAGE_PER_TICK], set(wanted[USAGE_PER_TICK:USAGE_PER_TICK + self.usage.capacity])
        for pair in due:
            self.recheck[pair] = (now + RECHECK_AFTER[0], 0)
        again = sorted((t, u) for u, (t, _) in self.recheck.items() if t <= now and u not in self.pending)
        for _, pair in again[:max(0, USAGE_PER_TICK - len(due))]:
            done = self.recheck[pair][1] + 1
            if done < len(RECHECK_AFTER):
                self.recheck[pair] = (now + RECHECK_AFTER[done], done)
            else:
                del self.recheck[pair]
            due.append(pair)
        stale = sorted((t, u) for u, (t, _) in self.usage.items()
                       if now - t > STALE_S and u not in self.pending and u not in self.recheck)
        return due + [u for _, u in stale][:max(0, USAGE_PER_TICK - len(due))]

    async def _refresh_usage(self) -> None:
        users = self._wanted_users()
        sem = asyncio.Semaphore(8)

        async def one(pair: UserDay) -> None:
            async with sem:
                status, body = await self.workers.usage(*pair)
            if status == 200:
                self.usage[pair] = (time.monotonic(), body)
                return
            self.pending.add(pair)  # asked again next tick
            if status == 503:
                raise aiohttp.ClientError(body.get("error", "no worker answered"))

        await asyncio.gather(*(one(u) for u in users))

    def snapshot(self, day: str | None = None) -> dict[str, Any]:
        """Everything the page shows, as JSON-ready data; the user panels for `day` (default: see above)."""
        now = datetime.now(timezone.utc)
        lat = stats.latencies_ms(self.notifications, now)
        per_day = Counter(d for _, d in self.usage)
        days = sorted(per_day, reverse=True)
        day = day if day in per_day else stats.default_day(per_day, stats.local_today(self.settings.default_timezone, now))
        on_day = [u for (_, d), (_, u) in self.usage.items() if d == day]
        latest = [{k: v for k, v in n.items() if not k.endswith("_dt")} for n in list(self.notifications)[-15:]]
        m = self.metrics
        return {
            "now": now.isoformat(),
            "app_id": self.settings.app_id,
            "errors": self.errors,
            "totals": {
                "produced": self.offsets.produced if self.offsets else None,
                "consumed": m.get("consumed"), "counted": m.get("counted"),
                "dead_lettered": m.get("dead_lettered"), "alerts_sent": m.get("alerts_sent"),
                "shadow_alerts_sent": m.get("shadow_alerts_sent"),
                "worker_lag": self.offsets.worker_lag if self.offsets else None,
                "notifier_lag": self.offsets.notifier_lag if self.offsets else None,
            },
            "dead_letters": m.get("dead_lettered_by_error", {}),
            # a worker's partitions that make no progress (seconds since they stopped), and why
            "stalled": {"partitions": m.get("stalled_partitions", {}), "reasons": m.get("stalled_reasons", {})},
            "series": {k: list(v) for k, v in self.series.items()},
            "latency": {"p50_ms": stats.percentile(lat, 50), "p99_ms": stats.percentile(lat, 99), "n": len(lat)},
            "notifications": latest[::-1],
            "users": {**stats.user_buckets(on_day), "day": day, "days": days[:14], "tracked": len(self.usage)},
        }
