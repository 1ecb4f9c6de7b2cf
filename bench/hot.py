"""One hot user among spread users on one partition: the worker's records per second in each phase.

A phase of `python -m bench` (`run_hot`, with 30,000 by default); `python -m bench.hot [--hot 100000]`
runs it alone. It loads, on partition 0 of a fresh topic, spread users (each at
its limit), then one user's `--hot` succeeded transactions in one day (with three duplicates:
before, of and after the crossing one), then users after it who each go over the limit; starts
one `paylimit worker` and reports each phase's rate from the worker's /stats (its `consumed`
passing each phase's end: the records are counted in that order). A day's cost that grows with
its count shows as a hot rate below the spread one. tests/test_stream_app/test_hot_user.py runs
the same load (30,000) and checks what was counted.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Annotated, Any, Callable

import typer
from rich.console import Console

from paylimit.kafka import ensure_topics, produce_all
from paylimit.runtime.pipeline import Pipeline
from paylimit.settings import Settings, get_settings

DAY = datetime(2026, 3, 10, tzinfo=timezone.utc)
DUPLICATES = (5, 10, 20_000)  # positions in the hot user's ids sent twice


def record(tid: str, user: str, n: int) -> bytes:
    at = DAY + timedelta(seconds=n % 86_000)
    return json.dumps({"transaction_id": tid, "user_id": user, "amount": "12.50", "currency": "INR",
                       "status": "succeeded", "occurred_at": at.isoformat(), "timezone": "UTC"}).encode()


def hot_id(i: int) -> str:
    return f"{i:08d}-6b0d-449b-af03-675a1600a35a"  # a UUID's length, as producers send them


@dataclass
class HotLoad:
    records: list[tuple[int, bytes | None, bytes | None]] = field(default_factory=list)  # (partition 0, key, value)
    ends: dict[str, int] = field(default_factory=dict)  # phase -> records up to its end
    duplicates: int = 0

    def add(self, user: str, tid: str) -> None:
        self.records.append((0, user.encode(), record(tid, user, len(self.records))))


def hot_load(hot: int, spread_users: int = 3_000, spread_each: int = 10, after_users: int = 150) -> HotLoad:
    load = HotLoad()
    for i in range(spread_each):
        for u in range(spread_users):
            load.add(f"spread-{u}", f"spread-{u}-{i}")
    load.ends["spread"] = len(load.records)
    for i in range(hot):
        load.add("hot", hot_id(i))
        if i in DUPLICATES:
            load.add("hot", hot_id(i))
            load.duplicates += 1
    load.ends["hot"] = len(load.records)
    for i in range(11):
        for u in range(after_users):
            load.add(f"after-{u}", f"after-{u}-{i}")
    load.ends["after"] = len(load.records)
    return load


def produce(settings: Settings, records: list[tuple[int, bytes | None, bytes | None]]) -> None:
    produce_all(settings, settings.topic_transactions, records)


def follow(pipeline: Pipeline, total: int, timeout: float,
           on_progress: Callable[[int], None] = lambda _n: None) -> list[tuple[float, int]]:
    """(time, the worker's consumed count) every 50 ms until it has consumed `total`; raises
    InfraError if the worker stops, AssertionError on the timeout."""
    seen: list[tuple[float, int]] = []
    deadline = time.monotonic() + timeout
    while not seen or seen[-1][1] < total:
        assert time.monotonic() < deadline, f"counted {seen[-1:] or 0} of {total} within {timeout:.0f} s"
        pipeline.check_running()
        consumed = int(pipeline.worker_metrics().get("consumed", 0))
        if consumed:
            on_progress(consumed - (seen[-1][1] if seen else 0))
            seen.append((time.monotonic(), consumed))
        time.sleep(0.05)
    return seen


def phase_rates(seen: list[tuple[float, int]], load: HotLoad) -> dict[str, float | None]:
    """Records per second of the spread and the hot phase, between the first looks past each end
    (the spread phase from its first 2,000: the worker's start is not its rate); None for a phase
    that passed between two looks."""
    def rate(start: int, end: int) -> float | None:
        (t0, c0), (t1, c1) = next(s for s in seen if s[1] >= start), next(s for s in seen if s[1] >= end)
        return round((c1 - c0) / (t1 - t0)) if t1 > t0 else None

    return {"spread_per_s": rate(2_000, load.ends["spread"]),
            "hot_per_s": rate(load.ends["spread"], load.ends["hot"])}


def run_hot(settings: Settings, hot: int, spread_users: int, timeout: float,
            on_total: Callable[[int], Callable[[int], None]] = lambda _total: lambda _n: None) -> dict[str, Any]:
    """Load the phases on `settings`' topic (partition 0), run one worker through them; each phase's
    rate, the hot one's as a share of the spread one's (`ratio`: 1.0 is the same cost a record).
    `on_total(records)` gives the callback that is told of each step of the worker's progress."""
    ensure_topics(settings)
    load = hot_load(hot, spread_users)
    produce(settings, load.records)
    pipeline = Pipeline(settings)
    pipeline.add_worker()
    try:
        seen = follow(pipeline, len(load.records), timeout, on_total(len(load.records)))
        metrics = pipeline.worker_metrics()
    finally:
        pipeline.stop()
    rates = phase_rates(seen, load)
    spread, hot_rate = rates["spread_per_s"], rates["hot_per_s"]
    return {"hot": hot, "spread_records": load.ends["spread"], "records": len(load.records), **rates,
            "ratio": round(hot_rate / spread, 3) if hot_rate and spread else None,
            "counted": metrics["counted"], "duplicates": metrics["duplicates"], "alerts": metrics["alerts_sent"]}


def main(hot: Annotated[int, typer.Option(help="The hot user's transactions in the day")] = 100_000) -> None:
    """Load the phases, run one worker through them, print the rates."""
    from bench.run import infra, phase_settings

    console = Console()
    with infra(get_settings(), console) as base:
        settings = phase_settings(base, base.home / "hot" / str(int(time.time())), "hot", 1)
        out = run_hot(settings, hot, spread_users=3_000, timeout=600)
    console.print(f"hot user: {out}; worker log {Path(settings.home) / 'logs'}")


if __name__ == "__main__":
    typer.run(main)
