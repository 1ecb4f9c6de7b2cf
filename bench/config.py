"""What one benchmark run measures and how big: the default run and the `--quick` one."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

#: the zone the bench's transactions are counted in (they carry no `timezone`: the default applies)
ZONE = "Asia/Kolkata"
LIMIT = 10


@dataclass(frozen=True)
class BenchConfig:
    records: int = 300_000  # pre-loaded transactions (ceiling, catch-up, memory, peer)
    users: int = 100_000
    partitions: int = 6
    rates: tuple[int, ...] = (10_000, 20_000)  # sustained end-to-end, tx/s
    duration: float = 120.0  # seconds per sustained rate
    # "one worker keeps up with N tx/s": rates stepped up, each for `step_duration`, until one does not hold
    steps: tuple[int, ...] = (5_000, 7_500, 10_000, 12_500, 15_000, 20_000)
    step_duration: float = 25.0
    hot: int = 30_000  # one user's transactions in a day, after spread users on the same partition
    hot_spread_users: int = 3_000  # each with 10 transactions before the hot user's
    heavy_share: float = 0.05  # of sustained traffic, sent to users who cross the limit
    catchup_timeout: float = 180.0  # a catch-up still running then is reported from its progress
    peer_timeout: float = 180.0
    recovery_rate: int = 1000
    kill_after: float = 30.0  # seconds of steady processing before the kill -9: the state a restart restores
    recovery_timeout: float = 60.0
    drain_timeout: float = 90.0
    peer: bool = True
    cluster: bool = False  # also the catch-ups on a local cluster of three brokers
    quick: bool = False
    results_dir: Path = field(default=Path("bench/results"))

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["results_dir"] = str(self.results_dir)
        d["rates"] = list(self.rates)
        d["steps"] = list(self.steps)
        return d


def quick(config: BenchConfig) -> BenchConfig:
    """The `--quick` sizes: every phase runs, small enough for one or two minutes."""
    return replace(config, records=20_000, users=2_000, rates=(500, 1000), duration=8.0, steps=(500, 1000),
                   step_duration=5.0, hot=5_000, hot_spread_users=1_000, catchup_timeout=45.0,
                   peer_timeout=60.0, recovery_rate=500, kill_after=4.0, recovery_timeout=45.0,
                   drain_timeout=45.0, quick=True)
