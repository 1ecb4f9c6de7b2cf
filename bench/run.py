"""The orchestration: infra, then every phase in order, with a progress display; one result dict.

Phases: pre-load -> ceiling -> stream_app catch-up with 1 worker (and its memory) and with 2 (and
3 with `--cluster`) -> with `--cluster`, the same on a local cluster of three brokers (its own
pre-load, ceiling and catch-ups with 1, 2 and 3 workers) -> Quix Streams peer -> sustained end to
end at each rate -> one hot user among spread users (bench/hot.py) -> the rate stepped up until
one worker no longer keeps up (bench/steps.py) -> recovery after kill -9. Each phase
has its own topics, consumer groups and PAYLIMIT_HOME (under the run's directory), so a run
never touches another's data. A phase that fails is recorded with its error and the run goes on.
"""

from __future__ import annotations

import time
import uuid
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Callable, Iterator

from pydantic import SecretStr
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from bench import machine
from bench.catchup import run_catchup
from bench.ceiling import run_ceiling
from bench.config import BenchConfig
from bench.hot import run_hot
from bench.load import LoadResult, preload
from bench.peer import run_quix_peer
from bench.recovery import run_recovery
from bench.steps import run_steps
from bench.sustained import run_sustained
from paylimit.runtime import local
from paylimit.settings import Settings


@contextmanager
def infra(settings: Settings, console: Console) -> Iterator[Settings]:
    """The given Kafka and Redis, or the local ones under PAYLIMIT_HOME/bench (stopped after, if we started them)."""
    if settings.kafka_bootstrap_servers and settings.redis_url:
        yield settings
        return
    home = settings.model_copy(update={"home": settings.home / "bench"})
    before = local.read_state(home)
    started = not (before.kafka_running and before.redis_running)
    state = local.up(home, announce=lambda m: console.print(f"[dim]{m}[/]"))
    try:
        yield settings.model_copy(update={"kafka_bootstrap_servers": state.kafka_bootstrap, "redis_url": SecretStr(state.redis_url or "")})
    finally:
        if started:
            local.down(home)


def phase_settings(base: Settings, run_home: Path, name: str, partitions: int, topic: str | None = None) -> Settings:
    """Fresh topics, consumer groups and home for one phase (on `topic` when given)."""
    tag = uuid.uuid4().hex[:8]
    return base.isolated(f"bench-{name}-{tag}", run_home / name, partitions=partitions,
                         **({"topic_transactions": topic} if topic else {}))


class Phases:
    """Runs phases under one rich Progress; a failing phase becomes {"error": ...}."""

    def __init__(self, progress: Progress, console: Console) -> None:
        self.progress = progress
        self.console = console
        self.failed: list[str] = []

    def advance(self, description: str, total: float | None) -> Callable[[int], None]:
        task = self.progress.add_task(description, total=total)
        return lambda n: self.progress.advance(task, n)

    def run(self, name: str, fn: Callable[[], dict]) -> dict:
        began = time.monotonic()
        try:
            out = fn()
        except Exception as exc:  # noqa: BLE001 - recorded in the result and printed, never hidden
            self.failed.append(name)
            self.console.print(f"[red]{name} failed:[/] {type(exc).__name__}: {exc}")
            return {"error": f"{type(exc).__name__}: {exc}"}
        self.console.print(f"[green]✓[/] {name} ({time.monotonic() - began:.0f} s)")
        return out


def run(config: BenchConfig, settings: Settings, console: Console) -> dict[str, Any]:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    result: dict[str, Any] = {"stamp": stamp, "started_at": datetime.now(UTC).isoformat(),
                              "machine": machine.describe(), "config": config.as_dict()}
    began = time.monotonic()
    columns = (SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with infra(settings, console) as base, Progress(*columns, console=console, transient=False) as progress:
        run_home = base.home / "bench" / "runs" / stamp
        phases = Phases(progress, console)
        result["kafka"] = base.kafka_bootstrap_servers
        shared = phase_settings(base, run_home, "load", config.partitions)
        topic, n = shared.topic_transactions, config.records
        load_box: list[LoadResult] = []

        def do_load() -> dict:
            load_box.append(preload(shared, n, config.users, on_progress=phases.advance("pre-load", n)))
            return load_box[0].as_dict()

        result["load"] = phases.run("pre-load", do_load)
        if not load_box:
            result["seconds"] = round(time.monotonic() - began, 1)
            return result | {"failed": phases.failed}
        load = load_box[0]

        ceiling_box: list[Any] = []

        def do_ceiling() -> dict:
            tp, counts = run_ceiling(shared, topic, n, on_progress=phases.advance("ceiling", n))
            ceiling_box.append(tp)
            return tp.as_dict() | {"user_days": len(counts), "over_limit_user_days": sum(c > 10 for c in counts.values())}

        result["ceiling"] = phases.run("ceiling", do_ceiling)
        ceiling = ceiling_box[0] if ceiling_box else None
        result["catchup"] = {}
        for workers in (1, 2, 3) if config.cluster else (1, 2):
            def do_catchup(workers: int = workers) -> dict:
                s = phase_settings(base, run_home, f"catchup{workers}", config.partitions, topic)
                c = run_catchup(s, workers, n, config.catchup_timeout,
                                on_progress=phases.advance(f"stream_app catch-up, {workers} worker(s)", n))
                if workers == 1:
                    users = load.active_users if c.throughput.complete else load.active_users_at(c.consumed / n)
                    result["memory"] = memory(c.rss_start_mb, c.rss_end_mb, users,
                                              load.active_users_at(c.consumed_at_rss_start / n), c.throughput.complete)
                return c.throughput.as_dict(ceiling) | {"consumed": c.consumed, "lag_at_end": c.lag_at_end}

            result["catchup"][f"workers_{workers}"] = phases.run(f"stream_app catch-up, {workers} worker(s)", do_catchup)
        result.setdefault("memory", {"error": "the 1-worker catch-up failed"})
        if config.cluster:
            result["cluster"] = phases.run("catch-up on three brokers",
                                           lambda: cluster_catchup(config, settings, run_home, phases))

        def do_peer() -> dict:
            s = phase_settings(base, run_home, "quix", config.partitions, topic)
            p = run_quix_peer(s, topic, n, config.peer_timeout, on_progress=phases.advance("Quix Streams peer", n),
                              announce=lambda m: console.print(f"[dim]{m}[/]"))
            return p.throughput.as_dict(ceiling) | {"version": p.version, "alerts": p.alerts}

        result["quix_peer"] = phases.run("Quix Streams peer", do_peer) if config.peer else {"skipped": True}
        peer_rate = result["quix_peer"].get("events_per_s")
        for c in result["catchup"].values():
            if peer_rate and "events_per_s" in c:
                c["vs_peer"] = round(c["events_per_s"] / peer_rate, 2)

        def do_sustained() -> dict:
            s = phase_settings(base, run_home, "sustained", config.partitions)
            out = run_sustained(s, list(config.rates), config.duration, config.users, config.heavy_share,
                                config.drain_timeout,
                                lambda rate: phases.advance(f"sustained {rate:,} tx/s", int(rate * config.duration)))
            return {"rates": out.rates, "rss_idle_mb": round(out.rss_idle_mb, 1)}

        sustained = phases.run("sustained end to end", do_sustained)
        result["sustained"] = sustained.get("rates", [sustained])
        result["rss_idle_mb"] = sustained.get("rss_idle_mb")
        mem = result["memory"]
        if result["rss_idle_mb"] and mem.get("active_users"):  # both at rest, their heaps trimmed
            mem["above_idle_per_100k_users_mb"] = round(
                (mem["rss_mb"] - result["rss_idle_mb"]) * 100_000 / mem["active_users"], 1)

        def do_hot() -> dict:
            s = phase_settings(base, run_home, "hot", 1)
            return run_hot(s, config.hot, config.hot_spread_users, config.catchup_timeout,
                           lambda total: phases.advance(f"one hot user, {config.hot:,} tx", total))

        result["hot_user"] = phases.run("one hot user", do_hot)

        def do_steps() -> dict:
            s = phase_settings(base, run_home, "steps", config.partitions)
            return run_steps(s, list(config.steps), config.step_duration, config.users, config.heavy_share,
                             config.drain_timeout,
                             lambda rate: phases.advance(f"keeps up with {rate:,} tx/s?", int(rate * config.step_duration)))

        result["keeps_up"] = phases.run("one worker's rate, stepped", do_steps)

        def do_recovery() -> dict:
            done = phases.advance("recovery after kill -9", 1)
            s = phase_settings(base, run_home, "recovery", config.partitions)
            out = run_recovery(s, config.recovery_rate, config.users, config.kill_after, config.recovery_timeout)
            done(1)
            return out

        result["recovery"] = phases.run("recovery after kill -9", do_recovery)
    result["seconds"] = round(time.monotonic() - began, 1)
    result["finished_at"] = datetime.now(UTC).isoformat()
    result["failed"] = phases.failed
    return result


def cluster_catchup(config: BenchConfig, settings: Settings, run_home: Path, phases: Phases) -> dict:
    """Pre-load, ceiling and catch-ups with 1, 2 and 3 workers on a local cluster of three brokers
    of its own (`infra up --brokers 3` under PAYLIMIT_HOME/bench-cluster; topics with 3 replicas,
    2 in sync), each catch-up as a ratio to that cluster's ceiling. On one machine the brokers
    share its cores with the workers: this shows the shape, not what a cluster of machines gains."""
    home = settings.model_copy(update={"home": settings.home / "bench-cluster", "kafka_bootstrap_servers": None,
                                       "redis_url": None})
    local.up(home, brokers=3)
    try:
        base = local.resolve(home).model_copy(update={"home": settings.home})
        n = config.records
        shared = phase_settings(base, run_home, "cluster-load", config.partitions)
        out: dict[str, Any] = {"load": preload(shared, n, config.users,
                                               on_progress=phases.advance("pre-load, three brokers", n)).as_dict()}
        ceiling, _ = run_ceiling(shared, shared.topic_transactions, n,
                                 on_progress=phases.advance("ceiling, three brokers", n))
        out["ceiling"] = ceiling.as_dict()
        for workers in (1, 2, 3):
            s = phase_settings(base, run_home, f"cluster-catchup{workers}", config.partitions, shared.topic_transactions)
            c = run_catchup(s, workers, n, config.catchup_timeout,
                            on_progress=phases.advance(f"catch-up on three brokers, {workers} worker(s)", n))
            out[f"workers_{workers}"] = c.throughput.as_dict(ceiling) | {"consumed": c.consumed,
                                                                          "lag_at_end": c.lag_at_end}
        return out
    finally:
        local.down(home)


def memory(rss_start_mb: float, rss_mb: float, users: int, users_at_start: int, complete: bool) -> dict:
    """The worker's RSS after the catch-up, scaled to 100k active users: in total, and its growth
    from the start reading over the users that came after it."""
    per = 100_000 / users if users else 0.0
    grown = users - users_at_start
    return {
        "rss_mb": round(rss_mb, 1),
        "rss_start_mb": round(rss_start_mb, 1),
        "active_users": users,
        "active_users_at_start": users_at_start,
        "active_users_estimated": not complete,
        "per_100k_users_mb": round(rss_mb * per, 1),
        "growth_per_100k_users_mb": round((rss_mb - rss_start_mb) * 100_000 / grown, 1) if grown > 0 else None,
    }
