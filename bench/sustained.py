"""Sustained end to end: worker + notifier running, a paced producer at each fixed rate.

For each rate: the achieved rate, the largest consumer lag of the workers (and of the notifier)
sampled every half second, the time to drain once producing stops, and the alert latency from
the crossing transaction's produce time to the notification's `delivered_at` in the
notifications log under the pipeline's PAYLIMIT_HOME.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Callable

from bench.catchup import rss_mb
from bench.figures import latency_summary_ms
from bench.paced import PacedProducer
from paylimit.errors import InfraError
from paylimit.notification_record import read_delivered
from paylimit.runtime.pipeline import Pipeline
from paylimit.settings import Settings


class LagSampler(threading.Thread):
    """Samples both consumer groups' lag every `interval` seconds; keeps the maxima."""

    def __init__(self, pipeline: Pipeline, interval: float = 0.5) -> None:
        super().__init__(daemon=True)
        self.pipeline = pipeline
        self.interval = interval
        self.max_lag = 0
        self.max_alert_lag = 0
        self.last_lag = 0
        self._stopped = threading.Event()

    def run(self) -> None:
        while not self._stopped.wait(self.interval):
            lag, alert_lag = self.pipeline.lags()
            self.last_lag = lag
            self.max_lag = max(self.max_lag, lag)
            self.max_alert_lag = max(self.max_alert_lag, alert_lag)

    def stop(self) -> None:
        self._stopped.set()
        self.join(timeout=10)


@dataclass
class SustainedRun:
    rates: list[dict]
    rss_idle_mb: float  # the worker's RSS after the warm-up: the memory figure's baseline


def drain(pipeline: Pipeline, timeout: float) -> float | None:
    """Seconds until both groups have committed everything, or None at the timeout."""
    began = time.monotonic()
    try:
        pipeline.wait_drained(timeout=timeout, settle=0.3)
    except InfraError:
        if not all(w.alive for w in pipeline.workers) or not (pipeline.notifier and pipeline.notifier.alive):
            raise
        return None
    return time.monotonic() - began


def run_sustained(settings: Settings, rates: list[int], duration: float, users: int, heavy_share: float,
                  drain_timeout: float, on_rate: Callable[[int], Callable[[int], None]],
                  last: Callable[[dict], bool] = lambda _rate: False) -> SustainedRun:
    """Start worker + notifier, warm up, then run each rate in turn on the same pipeline (up to the
    first whose figures `last` takes for the last one)."""
    pipeline = Pipeline(settings)
    pipeline.start(workers=1)
    try:
        PacedProducer(settings, 200, 1.0, users, 0.5, "warmup").run()
        if drain(pipeline, max(drain_timeout, 120)) is None:
            raise InfraError(f"the pipeline did not take the warm-up records; see {pipeline.workers[0].log}")
        rss_idle = rss_mb(pipeline.workers[0].pid)
        out: list[dict] = []
        for rate in rates:
            out.append(_one_rate(pipeline, settings, rate, duration, users, heavy_share, drain_timeout, on_rate(rate)))
            if last(out[-1]):
                break
        return SustainedRun(out, rss_idle)
    finally:
        pipeline.stop()


#: transactions a spread user makes in one rate's run, on average: well under the limit, so the
#: alerts are the heavy users' (at 10,000 tx/s for two minutes over 100,000 users each would make
#: 12, and nearly every user would cross: an alert storm no wallet sees, measuring the notifier)
SPREAD_TX_PER_USER = 3


def spread_users(users: int, rate: int, duration: float) -> int:
    """The users a rate's spread traffic goes to: at least `users`, more as the run grows."""
    return max(users, int(rate * duration / SPREAD_TX_PER_USER))


def _one_rate(pipeline: Pipeline, settings: Settings, rate: int, duration: float, users: int, heavy_share: float,
              drain_timeout: float, on_progress: Callable[[int], None]) -> dict:
    producer = PacedProducer(settings, rate, duration, spread_users(users, rate, duration), heavy_share,
                             f"r{rate}", seed=rate, on_progress=on_progress)
    sampler = LagSampler(pipeline)
    sampler.start()
    try:
        producer.run()
        lag_at_stop = sampler.last_lag
        drain_s = drain(pipeline, drain_timeout)
    finally:
        sampler.stop()
    latencies = [n.delivered_at.timestamp() - producer.produced_at[n.crossing_transaction_id]
                 for n in read_delivered(settings)
                 if n.crossing_transaction_id in producer.produced_at]
    return {
        "target_rate": rate,
        "achieved_rate": round(producer.achieved_rate, 1),
        "sent": producer.delivered,
        "seconds": round(producer.seconds, 2),
        "max_lag": sampler.max_lag,
        "lag_at_stop": lag_at_stop,
        "max_alert_lag": sampler.max_alert_lag,
        "drain_s": round(drain_s, 2) if drain_s is not None else None,
        "kept_up": drain_s is not None,
        "alerts": len(latencies),
        "latency_ms": latency_summary_ms(latencies),
    }
