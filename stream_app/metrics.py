"""The worker's record accounting (every consumed record ends in exactly one of these buckets), and
what stops its progress, where, since when and why."""

from __future__ import annotations

import logging
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Sequence

from prometheus_client import Histogram

from stream_app.counting import Outcome

log = logging.getLogger("paylimit.worker")


@dataclass
class Stall:
    partitions: tuple[int, ...]
    reason: str
    since: float = field(default_factory=time.monotonic)


@dataclass
class Metrics:
    consumed: int = 0
    replayed: int = 0  # delivered again after a restart or rebalance, already in the state: skipped
    outcomes: Counter[str] = field(default_factory=Counter)
    dead_lettered: Counter[str] = field(default_factory=Counter)
    stalled: dict[str, Stall] = field(default_factory=dict)  # what is stalled ("outputs", ...) -> how
    stalls: int = 0  # how many stalls began since the worker started
    # batches counted (`Processor.process`); registered in the worker's registry (`stream_app.exporter`)
    batch_records: Histogram = field(default_factory=lambda: Histogram(
        "paylimit_worker_batch_records", "Records in one batch the worker counted", registry=None,
        buckets=(1, 10, 50, 100, 250, 500, 1000, 2000, 5000)))
    batch_seconds: Histogram = field(default_factory=lambda: Histogram(
        "paylimit_worker_batch_seconds", "Time to count one batch and have its outputs acknowledged", registry=None,
        buckets=(.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30)))

    def outcome(self, outcome: Outcome, alerts: int = 1, shadow: int = 0) -> None:
        """One record's outcome; `alerts`: how many alerts it (re-)sent, when it is CROSSED or RESEND,
        `shadow` of them to the shadow topic (shadow rules' alerts, never delivered)."""
        self.consumed += 1
        self.outcomes[outcome] += 1  # a str enum: counted under its value
        if outcome in (Outcome.CROSSED, Outcome.RESEND):
            self.outcomes[f"{outcome.value}_alerts"] += alerts - shadow  # one record may fire several rules' tiers
            self.outcomes[f"{outcome.value}_shadow"] += shadow

    def dead_letter(self, error: str) -> None:
        self.consumed += 1
        self.dead_lettered[error] += 1

    def batch(self, records: int, seconds: float) -> None:
        self.batch_records.observe(records)
        self.batch_seconds.observe(seconds)

    def stall(self, what: str, partitions: Sequence[int], reason: str) -> None:
        """`what` cannot go on (from now, or still) on `partitions`, for `reason`: said at once in
        the log, then every few seconds by `report_stalls`."""
        parts = tuple(sorted(set(partitions)))
        stall = self.stalled.get(what)
        if stall is None:
            log.error("STALLED: %s on partitions %s: %s", what, list(parts), reason)
            self.stalls += 1
            stall = self.stalled[what] = Stall(parts, reason)
        stall.partitions, stall.reason = parts, reason

    def resume(self, what: str) -> None:
        """`what` goes on again."""
        stall = self.stalled.pop(what, None)
        if stall is not None:
            log.warning("resumed: %s goes on after %.0f s", what, time.monotonic() - stall.since)

    def report_stalls(self) -> None:
        for what, stall in self.stalled.items():
            log.error("STALLED for %.0f s: %s on partitions %s: %s", time.monotonic() - stall.since, what,
                      list(stall.partitions), stall.reason)

    def as_dict(self) -> dict:
        o = self.outcomes
        now = time.monotonic()
        stalled: dict[str, float] = {}
        for stall in self.stalled.values():
            for p in stall.partitions:
                stalled[str(p)] = max(stalled.get(str(p), 0.0), round(now - stall.since, 1))
        return {
            "consumed": self.consumed,
            "counted": o["counted"] + o["crossed"],
            "duplicates": o["duplicate"] + o["resend"],
            "not_succeeded": o["not_succeeded"],
            "dead_lettered": sum(self.dead_lettered.values()),
            "dead_lettered_by_error": dict(self.dead_lettered),
            "alerts_sent": o["crossed_alerts"],
            "alerts_resent": o["resend_alerts"],
            "shadow_alerts_sent": o["crossed_shadow"],
            "replayed": self.replayed,
            # empty while progress moves; else partition -> seconds since it stopped, and why (numbers
            # only, so the dashboard and the pipeline sum the workers' metrics as they do the rest)
            "stalled_partitions": stalled,
            "stalled_reasons": {s.reason: len(s.partitions) for s in self.stalled.values()},
            "stalls": self.stalls,
        }

    def line(self) -> str:
        return " ".join(f"{k}={v}" for k, v in self.as_dict().items() if not isinstance(v, dict))
