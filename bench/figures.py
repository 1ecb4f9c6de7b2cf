"""The measured figures, as plain dataclasses, and the arithmetic on them (rates, percentiles)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Throughput:
    """Records consumed between a start and an end; `first` is when the first record was seen.

    `events_per_s` counts from the start (process or consumer start: what a catch-up costs);
    `steady_events_per_s` from the first record (startup excluded).
    """

    records: int
    seconds: float  # start -> end
    steady_seconds: float  # first record -> end
    complete: bool = True  # False: stopped at the timeout; the rate is from the progress so far

    @property
    def events_per_s(self) -> float:
        return self.records / self.seconds if self.seconds > 0 else 0.0

    @property
    def steady_events_per_s(self) -> float:
        return self.records / self.steady_seconds if self.steady_seconds > 0 else 0.0

    def as_dict(self, ceiling: "Throughput | None" = None) -> dict:
        d = {
            "records": self.records,
            "seconds": round(self.seconds, 3),
            "steady_seconds": round(self.steady_seconds, 3),
            "events_per_s": round(self.events_per_s, 1),
            "steady_events_per_s": round(self.steady_events_per_s, 1),
            "complete": self.complete,
        }
        if ceiling is not None:
            d["ratio"] = ratio(self.events_per_s, ceiling.steady_events_per_s)
            d["steady_ratio"] = ratio(self.steady_events_per_s, ceiling.steady_events_per_s)
        return d


def ratio(value: float, ceiling: float) -> float:
    return round(value / ceiling, 4) if ceiling > 0 else 0.0


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0-100) by linear interpolation; 0.0 for no values."""
    if not values:
        return 0.0
    s = sorted(values)
    pos = (len(s) - 1) * q / 100
    lo = int(pos)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (pos - lo)


def latency_summary_ms(seconds: list[float]) -> dict:
    ms = [s * 1000 for s in seconds]
    return {
        "count": len(ms),
        "p50": round(percentile(ms, 50), 1),
        "p95": round(percentile(ms, 95), 1),
        "p99": round(percentile(ms, 99), 1),
        "max": round(max(ms), 1) if ms else 0.0,
    }
