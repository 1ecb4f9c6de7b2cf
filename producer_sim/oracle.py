"""The oracle: a deliberately simple, independent reading of the processing order over what was sent.

It walks the sent records partition by partition in offset order and applies the steps of the
stream app's contract literally (decode, future check, duplicate, too_late, stream time, count,
alert on limit + 1), and each limit rule's tiers over that rule's list of counted transactions.
It shares no counting or local-day code with `stream_app`: the day arithmetic
is done here with zoneinfo, every instant compared in UTC (Python compares two datetimes of the
same tzinfo by wall clock, which is wrong across a DST fall-back).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from paylimit.contracts import (ExpectedAlert, InvalidRecord, SentRecord, Transaction, alert_id_for,
                                decode_transaction)
from paylimit.rules import DEFAULT_RULE, Rule, default_rule, rule_alert_id
from paylimit.settings import Settings


@dataclass(frozen=True)
class ExpectedDeadLetter:
    seq: int
    partition: int
    offset: int
    error: str


@dataclass
class Expected:
    """What the stream app must produce for a list of sent records."""

    alerts: list[ExpectedAlert] = field(default_factory=list)  # sorted by alert_id
    dead_letters: dict[int, ExpectedDeadLetter] = field(default_factory=dict)  # by seq
    duplicates: int = 0
    counted: int = 0
    #: (user, local date) -> the count the worker's usage view must answer, for each day of a valid record
    usage: dict[tuple[str, date], int] = field(default_factory=dict)


@dataclass
class _Day:
    zone: str
    start: datetime
    end: datetime
    ids: list[str] = field(default_factory=list)
    seen: set[str] = field(default_factory=set)
    first_seen_at: datetime | None = None
    alerted: bool = False
    by_rule: dict[str, list[Transaction]] = field(default_factory=dict)  # each rule's counted transactions
    fired: set[tuple[str, str]] = field(default_factory=set)  # (rule, tier) that fired


def day_bounds(day: date, zone: str) -> tuple[datetime, datetime]:
    """Local midnight starting `day` and the next local midnight, as aware instants in the zone."""
    tz = ZoneInfo(zone)
    start = datetime(day.year, day.month, day.day, tzinfo=tz)
    following = day + timedelta(days=1)
    end = datetime(following.year, following.month, following.day, tzinfo=tz)
    # normalise to the offset in force at that instant (a ZoneInfo datetime keeps the wall clock)
    return start.astimezone(UTC).astimezone(tz), end.astimezone(UTC).astimezone(tz)


def _utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC)


def expected_outcome(
    records: Iterable[SentRecord],
    settings: Settings,
    now: datetime,
    overrides: Mapping[str, int] | None = None,
    rules: Sequence[Rule] = (),
    changes: Mapping[int, Sequence[Rule]] | None = None,
) -> Expected:
    """Expected alerts and dead letters. `now` is the wall clock the stream app will read (step 2);
    `overrides` the per-user limits and `rules` the limit rules (besides daily_count) in force
    before the first event; `changes`: seq -> the rules in force from that record on (written
    once the worker had counted every record before it). A shadow rule counts and fires like any
    other, but its alerts are not expected (never delivered); promoted, a tier it fired stays fired."""
    overrides = overrides or {}
    changes = changes or {}

    def rules_at(seq: int) -> Sequence[Rule]:
        return changes[max(n for n in changes if n <= seq)] if any(n <= seq for n in changes) else rules

    by_partition: dict[int, list[SentRecord]] = defaultdict(list)
    for rec in records:
        by_partition[rec.partition].append(rec)
    out = Expected()
    days: dict[tuple[str, date], _Day] = {}
    windows: dict[tuple[str, str, str, str], _Window] = {}  # (user, rule, measure, window) -> what it counted
    horizon = _utc(now) + settings.max_clock_skew
    for partition in sorted(by_partition):
        stream_time: datetime | None = None
        for rec in sorted(by_partition[partition], key=lambda r: r.offset):

            def dead(error: str) -> None:
                out.dead_letters[rec.seq] = ExpectedDeadLetter(rec.seq, rec.partition, rec.offset, error)

            # 1. decode and validate
            try:
                tx = decode_transaction(rec.value.encode("utf-8"), settings.max_record_bytes)
            except InvalidRecord as exc:
                dead(exc.error)
                continue
            occurred = _utc(tx.occurred_at)
            # 2. dated too far ahead of the wall clock
            if occurred > horizon:
                dead("too_far_in_future")
                continue
            # 3. local day and duplicate check
            zone = tx.timezone or settings.default_timezone
            local_date = tx.occurred_at.astimezone(ZoneInfo(zone)).date()
            key = (tx.user_id, local_date)
            day = days.get(key)
            if day is None:
                start, end = day_bounds(local_date, zone)
                day = days[key] = _Day(zone, start, end)
            if tx.status == "succeeded" and tx.transaction_id in day.seen:
                out.duplicates += 1
                continue
            # 4. past the retention
            if stream_time is not None and stream_time >= _utc(day.end) + settings.retention:
                dead("too_late")
                continue
            # 5. stream time
            stream_time = occurred if stream_time is None else max(stream_time, occurred)
            # 6. only successful transactions count
            if tx.status != "succeeded":
                continue
            # 7. count, and alert on the one that takes the count to limit + 1
            day.seen.add(tx.transaction_id)
            day.ids.append(tx.transaction_id)
            out.counted += 1
            if day.first_seen_at is None:
                day.first_seen_at = tx.occurred_at
            limit = overrides.get(tx.user_id, settings.daily_limit)
            late = _utc(day.end) < stream_time
            for rule in [default_rule(settings.daily_limit), *sorted(rules_at(rec.seq), key=lambda r: r.name)]:
                fired: list[ExpectedAlert] = []
                if rule.window == "calendar_day":
                    fired = _tiers_fired(rule, tx, day, limit, local_date, late)
                elif _counts(rule, tx):
                    window = windows.setdefault((tx.user_id, rule.name, rule.measure, rule.window), _Window())
                    fired = _window_fired(rule, tx, window, zone, late)
                if not rule.shadow:  # a shadow rule's tiers fire (and stay fired) but alert nobody
                    out.alerts += fired
            if len(day.ids) == limit + 1 and not day.alerted:
                day.alerted = True
                out.alerts.append(ExpectedAlert(
                    alert_id=alert_id_for(tx.user_id, local_date),
                    user_id=tx.user_id,
                    local_date=local_date,
                    timezone=zone,
                    limit=limit,
                    count=limit + 1,
                    crossing_transaction_id=tx.transaction_id,
                    transaction_ids=list(day.ids),
                    window_start=day.start,
                    window_end=day.end,
                    first_seen_at=day.first_seen_at,
                    late=_utc(day.end) < stream_time,
                ))
    out.alerts.sort(key=lambda a: a.alert_id)
    out.usage = {key: len(day.ids) for key, day in days.items()}
    return out


def _counts(rule: Rule, tx: Transaction) -> bool:
    """Whether a rule counts a succeeded transaction: written out from the rule file's meaning."""
    if rule.users is not None and tx.user_id not in rule.users:
        return False
    if rule.filter.categories is not None and tx.category not in rule.filter.categories:
        return False
    if rule.filter.p2p_only and tx.merchant_id is not None:
        return False
    return rule.filter.currency is None or tx.currency == rule.filter.currency


def _tiers_fired(rule: Rule, tx: Transaction, day: _Day, daily_limit: int, local_date: date,
                 late: bool) -> list[ExpectedAlert]:
    """The heads-ups and alerts (but daily_count's own alert, above) this counted transaction fires."""
    if not _counts(rule, tx):
        return []
    default = rule.name == DEFAULT_RULE
    counted = day.by_rule.setdefault(f"{rule.name}|{rule.measure}", [])  # a new measure counts anew
    counted.append(tx)
    amount = rule.measure == "amount"
    value = sum((t.amount for t in counted), Decimal(0)) if amount else len(counted)
    limit = Decimal(daily_limit) if default else rule.overrides.get(tx.user_id, rule.limit)
    fired = []
    alerted_before = (rule.name, "alert") in day.fired or (default and day.alerted)
    for tier in rule.tiers:
        if (rule.name, tier.name) in day.fired or (default and tier.name == "alert"):
            continue
        if tier.name == "warn" and alerted_before:  # no heads-up after the alert
            continue
        if tier.name == "warn" and tier.percent is not None and not value * 100 >= limit * tier.percent:
            continue
        if tier.name == "alert" and not value > limit:
            continue
        day.fired.add((rule.name, tier.name))
        fired.append(ExpectedAlert(
            schema_version=2,
            alert_id=rule_alert_id(rule.name, tier.name, tx.user_id, local_date.isoformat()),
            user_id=tx.user_id, local_date=local_date, timezone=day.zone,
            limit=limit if amount else int(limit), count=len(counted), crossing_transaction_id=tx.transaction_id,
            transaction_ids=list(day.ids) if default else [],
            window_start=day.start, window_end=day.end, first_seen_at=counted[0].occurred_at, late=late,
            rule=rule.name, tier=tier.name, measure=rule.measure, value=value,
        ))
    return sorted(fired, key=lambda a: a.tier != "warn")


@dataclass
class _Window:
    counted: list[Transaction] = field(default_factory=list)  # in arrival order
    opens: list[datetime] = field(default_factory=list)  # from_first_24h: the windows opened
    fired: list[tuple[str, datetime]] = field(default_factory=list)  # (tier, window start)


def _window_fired(rule: Rule, tx: Transaction, win: _Window, zone: str, late: bool) -> list[ExpectedAlert]:
    """A 24 h window rule over everything it counted for the user: rolling_24h, the 24 h up to the
    transaction, each tier at most once in any 24 h; from_first_24h, the 24 h from the transaction
    that opened the window (the latest one opened that holds this one; else this one opens one)."""
    a_day = timedelta(hours=24)
    t = _utc(tx.occurred_at)
    win.counted.append(tx)
    if rule.window == "rolling_24h":
        start, end = t - a_day, t
        inside = [x for x in win.counted if start < _utc(x.occurred_at) <= end]

        def same(fired_start: datetime) -> bool:
            return abs(fired_start + a_day - t) < a_day
    else:
        holding = [s for s in win.opens if s <= t < s + a_day]
        start = max(holding) if holding else t
        if not holding:
            win.opens.append(t)
        end = start + a_day
        inside = [x for x in win.counted if start <= _utc(x.occurred_at) < end]

        def same(fired_start: datetime) -> bool:
            return fired_start == start
    amount = rule.measure == "amount"
    value = sum((x.amount for x in inside), Decimal(0)) if amount else len(inside)
    limit = rule.overrides.get(tx.user_id, rule.limit)
    out = []
    for tier in sorted(rule.tiers, key=lambda tr: tr.name != "warn"):
        if any(name == tier.name and same(s) for name, s in win.fired):
            continue
        if tier.name == "warn" and any(name == "alert" and same(s) for name, s in win.fired):
            continue
        over = value > limit if tier.name == "alert" else value * 100 >= limit * (tier.percent or 0)
        if not over:
            continue
        win.fired.append((tier.name, start))
        local = ZoneInfo(zone)
        out.append(ExpectedAlert(
            schema_version=2, alert_id=rule_alert_id(rule.name, tier.name, tx.user_id, start.isoformat()),
            user_id=tx.user_id, local_date=start.astimezone(local).date(), timezone=zone,
            limit=limit if amount else int(limit), count=len(inside), crossing_transaction_id=tx.transaction_id,
            transaction_ids=[], window_start=start, window_end=start + a_day,
            first_seen_at=min(_utc(x.occurred_at) for x in inside), late=late,
            rule=rule.name, tier=tier.name, measure=rule.measure, value=value,
        ))
    return out


def local_midnight_after(moment: datetime, zone: str) -> datetime:
    """The end of the local day `moment` falls on (handy for tests and scenario authors)."""
    return day_bounds(moment.astimezone(ZoneInfo(zone)).date(), zone)[1]


__all__ = ["ExpectedDeadLetter", "Expected", "day_bounds", "expected_outcome", "local_midnight_after"]
