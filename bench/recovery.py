"""Recovery after kill -9: the worker is killed mid-stream and restarted at once.

A paced producer keeps sending the whole time. Measured from the restart: the first record the
new process processes (its /stats `consumed` moving) and the lag back to its level before the
kill (the highest lag sampled in the last seconds before it, at least one second of traffic),
which with records still arriving is what "caught up" means.
"""

from __future__ import annotations

import threading
import time
from typing import Callable

from bench.paced import PacedProducer
from paylimit.errors import InfraError
from paylimit.kafka import LagReader
from paylimit.runtime.pipeline import Pipeline
from paylimit.settings import Settings

POLL = 0.1


def _consumed(pipeline: Pipeline) -> int:
    return int(pipeline.worker_metrics().get("consumed", 0))


def _wait_until(condition: Callable[[], bool], since: float, timeout: float, what: str) -> float:
    """Seconds from `since` (a monotonic time) until `condition()` holds."""
    while time.monotonic() - since < timeout:
        if condition():
            return time.monotonic() - since
        time.sleep(POLL)
    raise InfraError(f"recovery: {what} did not happen within {timeout:.0f}s")


def run_recovery(settings: Settings, rate: int, users: int, kill_after: float, timeout: float) -> dict:
    """Worker + paced producer; kill -9 the worker after `kill_after` s of processing; restart; time it."""
    pipeline = Pipeline(settings)
    lag = LagReader(settings, settings.app_id, settings.topic_transactions)
    producer = PacedProducer(settings, rate, 3600.0, users, 0.05, "recovery", seed=3)
    sender = threading.Thread(target=producer.run, daemon=True)
    worker = pipeline.add_worker()
    try:
        sender.start()
        _wait_until(lambda: _consumed(pipeline) > 0, time.monotonic(), max(timeout, 90), "the worker's first record")
        lags: list[int] = []
        until = time.monotonic() + kill_after
        while time.monotonic() < until:
            lags.append(lag.lag())
            time.sleep(0.5)
        normal_lag = max(max(lags[-6:], default=0), rate)
        processed_before = _consumed(pipeline)
        worker.kill9()
        restarted = time.monotonic()
        worker.restart()
        to_first = _wait_until(lambda: _consumed(pipeline) > 0, restarted, timeout, "the first record after restart")
        try:
            to_caught_up: float | None = _wait_until(lambda: lag.lag() <= normal_lag, restarted, timeout,
                                                     "catching up after restart")
        except InfraError:
            to_caught_up = None  # processing resumed but the lag did not come back: reported with the lag left
        return {
            "rate": rate,
            "processed_before_kill": processed_before,
            "normal_lag": normal_lag,
            "to_first_record_s": round(to_first, 2),
            "to_caught_up_s": round(to_caught_up, 2) if to_caught_up is not None else None,
            "caught_up": to_caught_up is not None,
            "lag_at_end": lag.lag(),
        }
    finally:
        producer.stop()
        sender.join(timeout=70)
        lag.close()
        pipeline.stop()
