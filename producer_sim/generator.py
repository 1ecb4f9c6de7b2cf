"""Pure, seeded generation of a scenario's records: same scenario + seed => byte-identical records.

Everything comes from one `random.Random(seed)` consumed in a fixed order, and from the
scenario's fixed virtual start instant, never from the wall clock. Valid records are built as
`contracts.Transaction` and encoded with `contracts.encode` (so they are validated before they
are sent); malformed ones are crafted bytes carrying the dead-letter class they are meant to get
(`producer_sim.malformed`).
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from paylimit.contracts import Transaction, encode
from producer_sim.malformed import craft_malformed
from producer_sim.scenario import Burst, Day, Habits, Late, Population, Reorder, Scenario

#: the zone the generator assumes for users without a `timezone` field (the design's default);
#: it only shapes how their transactions spread over days, the oracle uses the settings' zone.
ASSUMED_DEFAULT_ZONE = "Asia/Kolkata"


@dataclass(frozen=True)
class SimRecord:
    """One record to send: key, exact value bytes, the dead-letter class it is meant to get."""

    key: str | None
    value: bytes
    expect_error: str | None
    at: datetime  # the virtual instant it is sent at (UTC), for --speed pacing
    kind: str = "tx"  # tx | duplicate | malformed
    pinned: bool = False  # part of a late sequence: never reordered


@dataclass(frozen=True)
class Plan:
    """A scenario made concrete: the records in send order and the per-user limit overrides."""

    scenario: Scenario
    seed: int
    records: list[SimRecord]
    overrides: dict[str, int] = field(default_factory=dict)


class _Builder:
    """Draws transactions from the shared rng; `stamp` orders records created at the same instant."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.items: list[tuple[datetime, int, SimRecord]] = []

    def transaction(self, habits: Habits, user: str, zone: str | None, when: datetime,
                    status: str | None = None) -> Transaction:
        rng = self.rng
        if status is None:
            names = sorted(habits.statuses)
            status = rng.choices(names, weights=[habits.statuses[n] for n in names])[0]
        lo, hi = (int(a * 100) for a in habits.amount)
        category = rng.choice(habits.categories) if habits.categories else None
        return Transaction(
            transaction_id=str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            user_id=user,
            amount=Decimal(rng.randint(lo, hi)) / 100,
            currency=rng.choice(habits.currencies),
            status=status,  # type: ignore[arg-type]
            occurred_at=when.astimezone(ZoneInfo(zone)) if zone else when,
            merchant_id=None if category == "p2p" else f"m-{rng.randrange(10_000):04d}",
            category=category,
            timezone=zone,
        )

    def add(self, tx: Transaction, at: datetime, *, expect_error: str | None = None, pinned: bool = False) -> None:
        record = SimRecord(tx.user_id, encode(tx), expect_error, at.astimezone(UTC), "tx", pinned)
        self.items.append((at.astimezone(UTC), len(self.items), record))

    def send(self, habits: Habits, user: str, zone: str | None, when: datetime, status: str | None = None) -> None:
        self.add(self.transaction(habits, user, zone, when, status), when)


def local_midnight(day: date, zone: str) -> datetime:
    return datetime.combine(day, time(0), tzinfo=ZoneInfo(zone)).astimezone(UTC)


def _uniform(rng: random.Random, start: datetime, end: datetime) -> datetime:
    seconds = max(int((end - start).total_seconds()), 1)
    return start + timedelta(seconds=rng.randrange(seconds))


def _population(b: _Builder, pop: Population, users: int, start: datetime, end: datetime) -> None:
    for i in range(users):
        user = f"{pop.name}-{i:04d}"
        zone = b.rng.choice(pop.timezones)
        zone_name = zone or ASSUMED_DEFAULT_ZONE
        day = start.astimezone(ZoneInfo(zone_name)).date()
        while (day_start := local_midnight(day, zone_name)) < end:
            day_end = local_midnight(day + timedelta(days=1), zone_name)
            lo, hi = max(start, day_start), min(end, day_end)
            share = (hi - lo) / (day_end - day_start)
            n = round(b.rng.randint(*pop.tx_per_day) * share)
            for when in sorted(_uniform(b.rng, lo, hi) for _ in range(n)):
                b.send(pop, user, zone, when)
            day += timedelta(days=1)


def _burst(b: _Builder, burst: Burst) -> None:
    pivot = burst.at.replace(tzinfo=ZoneInfo(burst.timezone)).astimezone(UTC)
    window = timedelta(seconds=burst.seconds)
    for i in range(burst.users):
        user = f"{burst.name}-{i:04d}"
        before = [pivot - timedelta(seconds=1)] + [_uniform(b.rng, pivot - window, pivot) for _ in range(burst.before - 1)]
        after = [pivot] + [_uniform(b.rng, pivot, pivot + window) for _ in range(burst.after - 1)]
        for when in sorted(before[: burst.before] + after[: burst.after]):
            b.send(burst, user, burst.timezone, when, "succeeded")


def _whole_day(b: _Builder, day: Day) -> None:
    first, end = local_midnight(day.date, day.timezone), local_midnight(day.date + timedelta(days=1), day.timezone)
    last = end - timedelta(seconds=1)
    for i in range(day.users):
        user = f"{day.name}-{i:04d}"
        times = [first, last][: day.count] + [_uniform(b.rng, first, end) for _ in range(day.count - 2)]
        for when in sorted(times):
            b.send(day, user, day.timezone, when, "succeeded")


def _late(b: _Builder, late: Late) -> None:
    start = local_midnight(late.date, late.timezone)
    end = local_midnight(late.date + timedelta(days=1), late.timezone)
    arrival = end + late.arrive_after
    for i in range(late.users):
        user = f"{late.name}-{i:04d}"
        for when in sorted(_uniform(b.rng, start, end) for _ in range(late.on_time)):
            b.send(late, user, late.timezone, when, "succeeded")
        # the anchor: dated at the arrival, so this partition's stream time is past the day for sure
        b.add(b.transaction(late, user, late.timezone, arrival, "succeeded"), arrival, pinned=True)
        for _ in range(late.late):
            tx = b.transaction(late, user, late.timezone, _uniform(b.rng, start, end), "succeeded")
            b.add(tx, arrival, expect_error="too_late" if late.too_late else None, pinned=True)


def _reorder(rng: random.Random, records: list[SimRecord], spec: Reorder) -> list[SimRecord]:
    keyed = []
    for i, r in enumerate(records):
        pos = float(i)
        if not r.pinned and rng.random() < spec.rate:
            pos = i + rng.randint(1, spec.max_shift) + 0.5
        keyed.append((pos, i, r))
    return [r for _, _, r in sorted(keyed, key=lambda k: (k[0], k[1]))]


def _duplicate(rng: random.Random, records: list[SimRecord], spec: Reorder) -> list[SimRecord]:
    inserts: list[tuple[float, int, SimRecord]] = []
    for i, r in enumerate(records):
        if r.kind == "tx" and rng.random() < spec.rate:
            inserts.append((i + rng.randint(1, spec.max_shift) + 0.5, len(inserts), replace(r, kind="duplicate")))
    keyed = [(float(i), -1, r) for i, r in enumerate(records)] + inserts
    return [r for _, _, r in sorted(keyed, key=lambda k: (k[0], k[1]))]


def _scaled(pop: Population, users: int | None, total: int) -> int:
    if users is None or total == 0:
        return pop.users
    return max(1 if pop.users else 0, round(pop.users * users / total))


def generate(scenario: Scenario, seed: int, *, users: int | None = None, span: timedelta | None = None) -> Plan:
    """The scenario's records in send order. `users` rescales the populations' total user count,
    `span` replaces the scenario's simulated time span (the edge-case groups are kept as written)."""
    rng = random.Random(seed)
    b = _Builder(rng)
    start = scenario.start.astimezone(UTC)
    end = start + (span if span is not None else scenario.span)
    total = sum(p.users for p in scenario.populations)
    overrides: dict[str, int] = {}
    for pop in scenario.populations:
        n = _scaled(pop, users, total)
        _population(b, pop, n, start, end)
        if pop.limit is not None:
            overrides.update({f"{pop.name}-{i:04d}": pop.limit for i in range(n)})
    for burst in scenario.bursts:
        _burst(b, burst)
    for day in scenario.whole_days:
        _whole_day(b, day)
    for late in scenario.late:
        _late(b, late)
    for group in scenario.groups:
        if group.limit is not None and not isinstance(group, Population):
            overrides.update({f"{group.name}-{i:04d}": group.limit for i in range(group.users)})
    overrides.update(scenario.limits)
    records = [r for _, _, r in sorted(b.items, key=lambda item: (item[0], item[1]))]
    if scenario.out_of_order:
        records = _reorder(rng, records, scenario.out_of_order)
    if scenario.duplicates:
        records = _duplicate(rng, records, scenario.duplicates)
    for error in sorted(scenario.malformed):
        for n in range(scenario.malformed[error]):
            pos = rng.randrange(len(records) + 1)
            at = records[pos - 1].at if pos else start
            crafted = craft_malformed(rng, error, n, at)
            records[pos:pos] = crafted
    return Plan(scenario, seed, records, overrides)
