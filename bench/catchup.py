"""stream_app catching up on the pre-loaded topic: `paylimit worker` processes via Pipeline.

Timed from the workers' start to their consumer group's lag 0 (a catch-up's real cost,
process start and group join included), and from the first record processed (the worker's
/metrics `consumed` moving) to lag 0: the steady rate. With one worker, the worker's RSS is
read at its first /metrics answer and after the catch-up (the memory figure).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

import psutil

from bench.figures import Throughput
from paylimit.errors import InfraError
from paylimit.kafka import group_lag
from paylimit.runtime.pipeline import Pipeline
from paylimit.settings import Settings

POLL = 0.25


@dataclass
class CatchUp:
    throughput: Throughput
    rss_start_mb: float
    rss_end_mb: float
    consumed: int


def rss_mb(pid: int | None) -> float:
    """Resident memory of the process and its children, in MiB (0 when it is gone)."""
    if not pid:
        return 0.0
    try:
        proc = psutil.Process(pid)
        return (proc.memory_info().rss + sum(c.memory_info().rss for c in proc.children(recursive=True))) / 2**20
    except psutil.NoSuchProcess:
        return 0.0


def run_catchup(settings: Settings, workers: int, expected: int, timeout: float,
                on_progress: Callable[[int], None] = lambda _n: None) -> CatchUp:
    """Start `workers` workers on `settings` (their topic already holds `expected` records) and time them."""
    pipeline = Pipeline(settings)
    began = time.monotonic()
    try:
        for _ in range(workers):
            pipeline.add_worker()
        first: float | None = None
        rss_start = 0.0
        consumed = shown = 0
        last_lag_check = 0.0
        deadline = began + timeout
        while True:
            now = time.monotonic()
            if now >= deadline:
                return _partial(pipeline, began, first, consumed, rss_start)
            if not any(w.alive for w in pipeline.workers):
                w = pipeline.workers[-1]
                raise InfraError(f"the worker died during the catch-up; see {w.log}")
            metrics = pipeline.worker_metrics()
            if metrics:
                if not rss_start:
                    rss_start = rss_mb(pipeline.workers[0].pid)
                consumed = int(metrics.get("consumed", 0))
                if consumed and first is None:
                    first = now
                on_progress(max(min(consumed, expected) - shown, 0))
                shown = max(shown, min(consumed, expected))
            # the lag costs a consumer per look: only near the end, or now and then
            if consumed >= expected or now - last_lag_check > 5:
                last_lag_check = now
                if group_lag(settings, settings.app_id, settings.topic_transactions) == 0:
                    end = time.monotonic()
                    tp = Throughput(expected, end - began, end - (first or began))
                    return CatchUp(tp, rss_start, rss_mb(pipeline.workers[0].pid), consumed)
            time.sleep(POLL)
    finally:
        pipeline.stop()


def _partial(pipeline: Pipeline, began: float, first: float | None, consumed: int, rss_start: float) -> CatchUp:
    end = time.monotonic()
    tp = Throughput(consumed, end - began, end - (first or began), complete=False)
    return CatchUp(tp, rss_start, rss_mb(pipeline.workers[0].pid), consumed)
