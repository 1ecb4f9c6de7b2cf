"""stream_app catching up on the pre-loaded topic: `paylimit worker` processes via Pipeline.

Timed from the workers' start to their consumer group's lag 0 (a catch-up's real cost,
process start and group join included), and from the first record processed (the worker's
/stats `consumed` moving) to lag 0: the steady rate. With one worker, the worker's RSS is
read when it has processed 5 % of the records (its Kafka clients connected and their buffers
full) and after the catch-up: the memory figure is the growth between, per user added.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

import psutil

from bench.figures import Throughput
from paylimit.errors import InfraError
from paylimit.kafka import LagReader
from paylimit.runtime.pipeline import Pipeline
from paylimit.settings import Settings
from stream_app import heap

POLL = 0.25
#: the worker's start RSS is read once it has processed this share of the records: its fetch
#: buffers (8 MB of prefetch, the fetches in flight) are full by then, where at its first records
#: they were still filling, and counted as the users' memory
RSS_START_SHARE = 0.05
#: after every record was processed, how long the group may take to commit them all before the
#: catch-up is reported as stalled (its rate then ends at its last record, with the lag left)
COMMIT_GRACE = 15.0


@dataclass
class CatchUp:
    throughput: Throughput
    rss_start_mb: float
    rss_end_mb: float
    consumed: int
    consumed_at_rss_start: int  # records already processed when the start RSS was read
    lag_at_end: int = 0  # > 0 only when timed out: what the group had not committed


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
    lag = LagReader(settings, settings.app_id, settings.topic_transactions)
    began = time.monotonic()
    try:
        for _ in range(workers):
            pipeline.add_worker()
        first: float | None = None
        moved = began  # when `consumed` last grew: a timed-out catch-up's rate ends there
        rss_start = 0.0
        consumed = shown = consumed_at_rss_start = 0
        last_lag_check = 0.0
        deadline = began + timeout
        while True:
            now = time.monotonic()
            if now >= deadline or (consumed >= expected and now - moved > COMMIT_GRACE):
                return _partial(pipeline, lag, began, first, moved, consumed, rss_start, consumed_at_rss_start)
            if not any(w.alive for w in pipeline.workers):
                w = pipeline.workers[-1]
                raise InfraError(f"the worker died during the catch-up; see {w.log}")
            metrics = pipeline.worker_metrics()
            if metrics:
                if int(metrics.get("consumed", 0)) > consumed:
                    consumed, moved = int(metrics.get("consumed", 0)), now
                if consumed and first is None:
                    first = now
                if not consumed_at_rss_start and consumed >= RSS_START_SHARE * expected:
                    rss_start, consumed_at_rss_start = rss_mb(pipeline.workers[0].pid), consumed
                on_progress(max(min(consumed, expected) - shown, 0))
                shown = max(shown, min(consumed, expected))
            # a look at the lag costs the broker a few requests: only near the end, or now and then
            if consumed >= expected or now - last_lag_check > 5:
                last_lag_check = now
                if lag.lag() == 0:
                    end = time.monotonic()
                    tp = Throughput(expected, end - began, end - (first or began))
                    time.sleep(heap.INTERVAL + 0.5)  # at rest, its heap's free memory given back
                    return CatchUp(tp, rss_start, rss_mb(pipeline.workers[0].pid), consumed, consumed_at_rss_start)
            time.sleep(POLL)
    finally:
        lag.close()
        pipeline.stop()


def _partial(pipeline: Pipeline, lag: LagReader, began: float, first: float | None, moved: float,
             consumed: int, rss_start: float, consumed_at_rss_start: int) -> CatchUp:
    """A catch-up that did not reach lag 0 in time: its rate up to the last record it processed."""
    tp = Throughput(consumed, moved - began, moved - (first or began), complete=False)
    return CatchUp(tp, rss_start, rss_mb(pipeline.workers[0].pid), consumed, consumed_at_rss_start, lag.lag())
