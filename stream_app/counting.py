"""What one valid transaction does to its user's day: the pure decision, state passed in and out.

Everything about one (user, local day) lives in one `DayCount` (`stream_app.state`), written as one
table value (one changelog record): the count, the counted ids (in full up to the crossing one,
hashed after it) and, once known, the crossing transaction. So a replayed transaction can neither
count twice nor lose its alert: if it is the crossing one, the decision says to send the alert
again (same alert_id; the notifier drops the repeat).

The processing order (README, "Counting semantics"):
  duplicate check -> too_late check -> stream time advances -> status filter -> count.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from enum import Enum
from typing import NamedTuple, Sequence

from paylimit.rules import DEFAULT_RULE, Rule
from paylimit.transaction_facts import TransactionFacts
from stream_app.localday import LocalDay
from stream_app.state import DayCount
from stream_app.tiers import apply_rules


class Outcome(str, Enum):
    COUNTED = "counted"
    CROSSED = "crossed"  # counted, and fired a rule's tier (took the day over the limit...): raise its alerts
    DUPLICATE = "duplicate"
    RESEND = "resend"  # a duplicate of the day's crossing transaction: send its alert again
    NOT_SUCCEEDED = "not_succeeded"
    TOO_LATE = "too_late"


def day_key(user_id: str, date: str) -> str:
    """The `days` table key of one user's local day (`date` as YYYY-MM-DD)."""
    return f"{user_id}|{date}"


class Decision(NamedTuple):
    outcome: Outcome
    day: DayCount | None  # the new value to store, or None when nothing changes
    stream_time: float | None  # the partition's stream time after this record (epoch seconds)
    alert_day: DayCount | None = None  # the day to alert for (CROSSED or RESEND)
    fired: tuple[tuple[str, str], ...] = ()  # the (rule, tier) pairs to alert for, from alert_day


def decide(
    tx: TransactionFacts,
    day: LocalDay,
    current: DayCount | None,
    stream_time: float | None,
    limit: int,
    retention: timedelta,
    partition: int,
    rules: Sequence[Rule] = (),
    neighbours: Sequence[DayCount] = (),
) -> Decision:
    """Apply one valid transaction to its day: `current` (or a new day) is changed in place and
    returned as the decision's `day`; nothing else is. `limit` is the user's `daily_count` limit,
    `rules` the rules in force (`stream_app.tiers`), `neighbours` the user's days around this one
    (read by 24 h window rules)."""
    counted = tx.status == "succeeded"
    if counted and current is not None and current.holds(tx.transaction_id):
        fired = current.crossings(tx.transaction_id)
        if fired:
            return Decision(Outcome.RESEND, None, stream_time, current, tuple(fired))
        return Decision(Outcome.DUPLICATE, None, stream_time)
    end = day.end_at
    if stream_time is not None and stream_time >= end + retention.total_seconds():
        return Decision(Outcome.TOO_LATE, None, stream_time)
    st = max(stream_time or float("-inf"), tx.occurred_at.timestamp())
    if not counted:
        return Decision(Outcome.NOT_SUCCEEDED, None, st)
    state = current or DayCount(tx.user_id, day.key, day.zone, partition, end, tx.occurred_at.isoformat())
    # `>` rather than `== limit + 1` (in `add`): a limit lowered during the day alerts on the next transaction
    crossed = state.add(tx.transaction_id, limit, late=end < st)
    fired = apply_rules(tx, state, rules, limit, late=end < st, neighbours=neighbours)
    if crossed and not any(tier == "alert" and rule == DEFAULT_RULE for rule, tier in fired):
        fired.append((DEFAULT_RULE, "alert"))  # `rules` without daily_count (a caller of the core alone)
    if fired:
        return Decision(Outcome.CROSSED, state, st, state, tuple(fired))
    return Decision(Outcome.COUNTED, state, st)


def expiry_cutoff(stream_time: float, retention: timedelta) -> str:
    """The latest local date (YYYY-MM-DD) whose day may have expired by `stream_time`: no zone's
    day ends before 10:00 UTC of its date (UTC+14), so a later date needs no look at its value."""
    earliest_end = stream_time - kept_for(retention)
    return datetime.fromtimestamp(earliest_end - 10 * 3600, timezone.utc).date().isoformat()


def kept_for(retention: timedelta) -> float:
    """How long past its end a day's state is kept (seconds): twice the retention, so a duplicate
    arriving just past the retention is still recognised as a duplicate (and a replayed crossing
    one re-alerts); and at least the retention and two days, so a 24 h window of a transaction of
    the days after it (late by up to the retention) still reads it."""
    return max(2 * retention.total_seconds(), retention.total_seconds() + 2 * 86_400)


def expired(day_end: float, stream_time: float, retention: timedelta) -> bool:
    """May the state of a day ending at `day_end` be dropped (see `kept_for`)?"""
    return stream_time >= day_end + kept_for(retention)
