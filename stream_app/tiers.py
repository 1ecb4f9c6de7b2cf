"""What a counted transaction does to the rules of its user's day (`paylimit.rules`): the pure
step after `DayCount.add` counted it (and decided `daily_count`'s own `alert`, its crossing).

Each rule that applies to the user and whose filter the transaction passes adds it to its
`RuleDay` (1, or its amount); then each tier not yet fired that day fires if the rule's value now
reaches it: `warn` at `value * 100 >= limit * percent`, `alert` at `value > limit`. The limit is
the rule's as in force now (a changed rule applies from the next record on); a tier that fired
stays fired for the day whatever the rule becomes, and a heads-up never comes after its rule's
alert. `daily_count`'s value is the day's own count.

A 24 h window rule keeps, in each day's value, the times (and amounts) of the transactions it
counted that day, and the windows opened that day; a transaction's window reads the days around
its own (never writes them): `rolling_24h` is the 24 h before the transaction, over what has
arrived by then, and fires a tier at most once in any 24 h; `from_first_24h` is the window the
first transaction not in an open one opened, 24 h from its time, and fires each tier once per window.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Sequence

from paylimit.contracts import EPOCH
from paylimit.rules import DEFAULT_RULE, Rule
from paylimit.transaction_facts import TransactionFacts
from stream_app.state import DayCount, Fired, RuleDay


def passes(rule: Rule, tx: TransactionFacts) -> bool:
    """Does the rule count this (succeeded) transaction?"""
    f = rule.filter
    return (rule.applies_to(tx.user_id)
            and (f.categories is None or tx.category in f.categories)
            and (not f.p2p_only or tx.merchant_id is None)
            and (f.currency is None or tx.currency == f.currency))


def reached(tier_name: str, percent: Decimal | None, value: Decimal, limit: Decimal) -> bool:
    if tier_name == "alert":
        return value > limit
    assert percent is not None
    return value * 100 >= limit * percent


DAY_US = 86_400_000_000


def micros(at: datetime) -> int:
    """An instant as integer epoch microseconds: exact, and 8 bytes packed."""
    return (at - EPOCH) // timedelta(microseconds=1)


def window_at(rule: Rule, t: int, kept: Sequence[RuleDay]) -> tuple[int, list[tuple[int, Decimal]]] | None:
    """The start of `rule`'s 24 h window of an instant `t` (epoch microseconds) and the counted
    transactions in it, over `kept` (the rule's days around t): rolling_24h, (t - 24 h, t];
    from_first_24h, the latest window opened that holds t, [start, start + 24 h), or None."""
    if rule.window == "rolling_24h":
        start = t - DAY_US
        return start, [(at, a) for r in kept for at, a in r.entries() if start < at <= t]
    covering = [s for r in kept for s in r.opens if s <= t < s + DAY_US]
    if not covering:
        return None
    start = max(covering)
    return start, [(at, a) for r in kept for at, a in r.entries() if start <= at < start + DAY_US]


def kept_of(rule: Rule, days: Sequence[DayCount]) -> list[RuleDay]:
    """What `rule` counted in these days, as it counts now (same measure and window)."""
    kept = (day.rules.get(rule.name) for day in days)
    return [r for r in kept if r is not None and (r.measure, r.window) == (rule.measure, rule.window)]


def measured(rule: Rule, inside: Sequence[tuple[int, Decimal]]) -> Decimal:
    return Decimal(len(inside)) if rule.measure == "count" else sum((a for _, a in inside), Decimal(0))


def _window(rule: Rule, tx: TransactionFacts, state: RuleDay, days: Sequence[DayCount], limit: Decimal,
            late: bool) -> list[str]:
    """A 24 h window rule (its state already holds `tx`): the tiers `tx` fires, as their keys in
    `RuleDay.fired` (tier@window start). `days`: the user's days whose transactions may share a
    window with `tx` (the day before yesterday to tomorrow)."""
    t = micros(tx.occurred_at)
    kept = kept_of(rule, days)
    window = window_at(rule, t, kept)
    if window is None:  # from_first_24h: no open window holds it, so it opens one
        state.opens.append(t)
        window = window_at(rule, t, kept)
        assert window is not None
    start, inside = window
    if rule.window == "rolling_24h":
        same = lambda f: abs(f.start + DAY_US - t) < DAY_US  # noqa: E731  (fired within 24 h of t)
    else:
        same = lambda f: f.start == start  # noqa: E731
    fired = [(name.split("@")[0], f) for r in kept for name, f in r.fired.items() if "@" in name]
    count, value = len(inside), measured(rule, inside)
    out: list[str] = []
    for tier in rule.tiers:  # warn first (`paylimit.rules.Rule`)
        if any(name == tier.name and same(f) for name, f in fired):
            continue
        if tier.name == "warn" and any(name == "alert" and same(f) for name, f in fired):
            continue  # no heads-up after the alert
        if reached(tier.name, tier.percent, value, limit):
            state.fired[f"{tier.name}@{start}"] = Fired(tx.transaction_id, count, str(value), str(limit), late,
                                                        rule.measure, start, min(at for at, _ in inside),
                                                        rule.shadow)
            out.append(f"{tier.name}@{start}")
    return out


def _daily_count(tx: TransactionFacts, day: DayCount, rule: Rule, daily_limit: int, late: bool) -> list[tuple[str, str]]:
    """`daily_count`: the day's own count against the user's limit; its `alert` is the day's
    crossing (decided by `DayCount.add`). Its `RuleDay` only holds the tiers it fired, made when
    the first one fires (most days never warn: nothing more to build, store or decode)."""
    out: list[tuple[str, str]] = []
    state = day.rules.get(DEFAULT_RULE)
    over_before = day.crossing is not None and day.crossing != tx.transaction_id
    for tier in rule.tiers:  # warn first (`paylimit.rules.Rule`)
        if tier.name == "alert":
            if day.crossing == tx.transaction_id:
                out.append((DEFAULT_RULE, "alert"))
            continue
        if over_before or (state is not None and tier.name in state.fired):
            continue  # a heads-up never follows the alert (a limit changed meanwhile), nor comes twice
        if tier.percent is not None and day.count * 100 >= daily_limit * tier.percent:
            if state is None:  # first of the day's rules, as it is of the rules (a replay re-sends in that order)
                state = RuleDay("count", first_seen_at=day.first_seen_at)
                day.rules = {DEFAULT_RULE: state, **day.rules}
            state.count, state.value = day.count, Decimal(day.count)
            first = micros(datetime.fromisoformat(day.first_seen_at))
            state.fired[tier.name] = Fired(tx.transaction_id, day.count, str(day.count), str(daily_limit), late,
                                           "count", None, first, rule.shadow)
            out.append((DEFAULT_RULE, tier.name))
    return out


def apply_rules(tx: TransactionFacts, day: DayCount, rules: Sequence[Rule], daily_limit: int,
                late: bool, neighbours: Sequence[DayCount] = ()) -> list[tuple[str, str]]:
    """Count `tx` (already counted by `day`) into each rule it passes; the (rule, tier) pairs it
    fires, in the rules' order, warn before alert. `daily_limit` is the user's `daily_count` limit
    (their override); `daily_count`'s alert is the day's crossing, decided by `DayCount.add`.
    `neighbours`: the user's other days a 24 h window may reach (their values are only read)."""
    fired: list[tuple[str, str]] = []
    for rule in rules:
        if rule.name == DEFAULT_RULE:  # every succeeded transaction, the day's own count
            fired += _daily_count(tx, day, rule, daily_limit, late)
            continue
        if not passes(rule, tx):
            continue
        state = day.rules.get(rule.name)
        if state is None or state.measure != rule.measure or state.window != rule.window:
            # new today, or its measure or window changed: it counts again from here (what fired stays fired)
            state = day.rules[rule.name] = RuleDay(rule.measure, first_seen_at=tx.occurred_at.isoformat(),
                                                   fired=state.fired if state else None, window=rule.window)
        if rule.window != "calendar_day":
            state.count += 1
            state.remember(micros(tx.occurred_at), tx.amount if rule.measure == "amount" else Decimal(1))
            limit = rule.limit_for(tx.user_id)
            fired += [(rule.name, tier) for tier in _window(rule, tx, state, [*neighbours, day], limit, late)]
            continue
        state.count += 1
        state.value += 1 if rule.measure == "count" else tx.amount
        limit = rule.limit_for(tx.user_id)
        over_before = "alert" in state.fired
        for tier in rule.tiers:  # warn first (`paylimit.rules.Rule`)
            if tier.name == "warn" and over_before:
                continue  # a heads-up never follows its rule's alert (a limit or a rule changed meanwhile)
            if tier.name not in state.fired and reached(tier.name, tier.percent, state.value, limit):
                first = datetime.fromisoformat(state.first_seen_at or "")
                state.fired[tier.name] = Fired(tx.transaction_id, state.count, str(state.value), str(limit), late,
                                               rule.measure, None, micros(first), rule.shadow)
                fired.append((rule.name, tier.name))
    return fired
