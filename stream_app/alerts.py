"""The LimitAlert of a tier a day fired (`stream_app.tiers`): deterministic except for `detected_at`.

Built from the day's state alone (what the tier recorded when it fired), not from the rule as it
is now: an alert sent again after a crash is the alert sent first, whatever the rule became.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any, cast
from zoneinfo import ZoneInfo

from paylimit.contracts import EPOCH, LimitAlert
from paylimit.rules import DEFAULT_RULE, rule_alert_id
from stream_app.localday import day_bounds
from stream_app.state import DayCount
from stream_app.tiers import DAY_US


def _number(text: str, measure: str) -> int | Decimal:
    """A count as the integer it is (a version 1 alert's `limit` is one), an amount as its Decimal."""
    return int(Decimal(text)) if measure == "count" else Decimal(text)


def instant(micros: int, zone: str) -> datetime:
    return (EPOCH + timedelta(microseconds=micros)).astimezone(ZoneInfo(zone))


def fired_in_shadow(day: DayCount, rule: str, fired_as: str) -> bool:
    """Did a shadow rule fire this tier (its alert goes, and is re-sent, to the shadow topic)?"""
    state = day.rules.get(rule)
    fired = state.fired.get(fired_as) if state is not None else None
    return fired is not None and fired.shadow


def alert_for(day: DayCount, detected_at: datetime, rule: str = DEFAULT_RULE, fired_as: str = "alert") -> LimitAlert:
    """The alert of `rule`'s tier that fired as `fired_as` (its key in `RuleDay.fired`: the tier,
    and "@" its window's start for a 24 h window) in `day`."""
    tier, _, at = fired_as.partition("@")
    if at:  # a 24 h window: [start, start + 24 h), dated by its start
        start_at = day.rules[rule].fired[fired_as].start
        assert start_at is not None
        start, end = instant(start_at, day.zone), instant(start_at + DAY_US, day.zone)
        local_date, window = start.date(), start.astimezone(timezone.utc).isoformat()
    else:
        local_date, window = date.fromisoformat(day.date), day.date
        start, end = day_bounds(local_date, day.zone)
    common: dict[str, Any] = dict(alert_id=rule_alert_id(rule, tier, day.user_id, window), user_id=day.user_id,
                                  local_date=local_date, timezone=day.zone, window_start=start, window_end=end,
                                  detected_at=detected_at, rule=rule, tier=tier)
    if rule == DEFAULT_RULE and tier == "alert":  # a version 1 alert, as it always was
        assert day.crossing is not None and day.limit is not None
        count = len(day.head)  # the ids up to and including the crossing one
        return LimitAlert(**common, schema_version=1, limit=day.limit, count=count, value=count,
                          crossing_transaction_id=day.crossing, transaction_ids=list(day.head),
                          first_seen_at=datetime.fromisoformat(day.first_seen_at), late=day.late)
    fired = day.rules[rule].fired[fired_as]
    assert fired.first is not None
    return LimitAlert(
        **common, schema_version=2, measure=cast(Any, fired.measure),
        limit=_number(fired.limit, fired.measure), count=fired.counted, value=_number(fired.value, fired.measure),
        crossing_transaction_id=fired.crossing,
        # daily_count's ids are the day's own (kept up to its crossing); other rules keep none
        transaction_ids=day.head[:fired.counted] if rule == DEFAULT_RULE else [],
        first_seen_at=instant(fired.first, day.zone), late=fired.late,
    )
