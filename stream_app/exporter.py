"""The worker's metrics in the Prometheus text format (`GET /metrics`), read from its core at each
scrape: the record accounting (`stream_app.metrics`, also `GET /stats` as JSON), the batches, the
lag and the state of its assigned partitions, its changelog writes and its stalls."""

from __future__ import annotations

import time
from typing import Iterator

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from paylimit.serving import new_registry
from stream_app.counting import Outcome
from stream_app.processor import Processor


class WorkerCollector(Collector):
    def __init__(self, processor: Processor) -> None:
        self.processor = processor

    def collect(self) -> Iterator[Metric]:
        p = self.processor
        m = p.metrics
        records = CounterMetricFamily("paylimit_worker_records", "Records consumed, by outcome (dead_lettered: "
                                      "see paylimit_worker_dead_letters_total)", labels=["outcome"])
        for outcome in Outcome:
            records.add_metric([outcome.value], m.outcomes[outcome])
        records.add_metric(["dead_lettered"], sum(m.dead_lettered.values()))
        yield records
        letters = CounterMetricFamily("paylimit_worker_dead_letters", "Records dead-lettered, by error",
                                      labels=["error"])
        for error, n in sorted(m.dead_lettered.items()):
            letters.add_metric([error], n)
        yield letters
        yield CounterMetricFamily("paylimit_worker_replayed_records", "Records delivered again after a restart or "
                                  "rebalance, already in the state: skipped", value=m.replayed)
        yield CounterMetricFamily("paylimit_worker_changelog_records", "Records written to the state's changelog",
                                  value=p.checkpoint.changelog.sent)
        ready = p.group.ready()
        yield GaugeMetricFamily("paylimit_worker_ready", "1 once the worker counts (partitions assigned, state "
                                "restored), else 0", value=int(ready))
        assigned = p.group.assigned() if ready else []
        yield GaugeMetricFamily("paylimit_worker_assigned_partitions", "Transactions partitions assigned to "
                                "this worker", value=len(assigned))
        lag = GaugeMetricFamily("paylimit_worker_lag_records", "Records of an assigned partition not yet counted "
                                "(its end at the last fetch minus the state's next offset)", labels=["partition"])
        for partition in sorted(assigned):
            high, progress = p.reader.high_watermark(partition), p.days.progress(partition)
            if high is not None and progress is not None:
                lag.add_metric([str(partition)], max(0, high - progress.next_offset))
        yield lag
        values = p.days.values
        yield GaugeMetricFamily("paylimit_worker_state_keys", "Keys in the worker's state (user-days and "
                                "progress records)", value=len(values))
        yield GaugeMetricFamily("paylimit_worker_state_bytes", "Bytes of the state's values (their JSON)",
                                value=sum(map(len, values.values())))
        stalled = GaugeMetricFamily("paylimit_worker_stalled_seconds", "Seconds a partition's progress has been "
                                    "stalled (only stalled partitions are listed)", labels=["partition", "what"])
        now = time.monotonic()
        for what, stall in sorted(m.stalled.items()):
            for partition in stall.partitions:
                stalled.add_metric([str(partition), what], now - stall.since)
        yield stalled
        yield CounterMetricFamily("paylimit_worker_stalls", "Stalls begun since the worker started", value=m.stalls)


def worker_registry(processor: Processor) -> CollectorRegistry:
    registry = new_registry()
    registry.register(WorkerCollector(processor))
    registry.register(processor.metrics.batch_records)
    registry.register(processor.metrics.batch_seconds)
    return registry
