"""What a counted transaction does to the rules of its user's day (`paylimit.rules`): the pure
step after `DayCount.add` counted it (and decided `daily_count`'s own `alert`, its crossing).

Each rule that applies to the user and whose filter the transaction passes adds it to its
`RuleDay` (1, or its amount); then each tier not yet fired that day fires if the rule's value now
reaches it: `warn` at `value * 100 >= limit * percent`, `alert` at `value > limit`. The limit is
the rule's as in force now (a changed rule applies from the next record on); a tier that fired
stays fired for the day whatever the rule becomes, and a heads-up never comes after its rule's
alert. `daily_count`'s value is the day's own count.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Sequence

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


def apply_rules(tx: TransactionFacts, day: DayCount, rules: Sequence[Rule], daily_limit: int,
                late: bool) -> list[tuple[str, str]]:
    """Count `tx` (already counted by `day`) into each rule it passes; the (rule, tier) pairs it
    fires, in the rules' order, warn before alert. `daily_limit` is the user's `daily_count` limit
    (their override); `daily_count`'s alert is the day's crossing, decided by `DayCount.add`."""
    fired: list[tuple[str, str]] = []
    for rule in rules:
        if not passes(rule, tx):
            continue
        default = rule.name == DEFAULT_RULE
        state = day.rules.get(rule.name)
        if state is None:
            state = day.rules[rule.name] = RuleDay(rule.measure, first_seen_at=tx.occurred_at.isoformat())
        if default:  # the day's own count (a day counted before rules existed has no RuleDay yet)
            state.count, state.value = day.count, Decimal(day.count)
        else:
            state.count += 1
            state.value += 1 if rule.measure == "count" else tx.amount
        limit = Decimal(daily_limit) if default else rule.limit_for(tx.user_id)
        over_before = (day.crossing not in (None, tx.transaction_id)) if default else "alert" in state.fired
        for tier in sorted(rule.tiers, key=lambda t: t.name != "warn"):
            if default and tier.name == "alert":
                if day.crossing == tx.transaction_id:
                    fired.append((rule.name, "alert"))
                continue
            if tier.name == "warn" and over_before:
                continue  # a heads-up never follows its rule's alert (a limit or a rule changed meanwhile)
            if tier.name not in state.fired and reached(tier.name, tier.percent, state.value, limit):
                state.fired[tier.name] = Fired(tx.transaction_id, state.count, str(state.value), str(limit), late)
                fired.append((rule.name, tier.name))
    return fired
