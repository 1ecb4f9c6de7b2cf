"""What one transactions record does, as a value: `handle` (record -> `Handled`), pure, and
`Outputs`, what a batch sends (alerts, dead letters) before its state is written.

A record is either a dead letter (it does not parse, its day is too late) or a `Decision` of
`stream_app.counting` on its user's day; `handle` reads the day and the partition's stream time it
is given and changes nothing but the day value the decision returns (`stream_app.counting.decide`
counts in place). The caller (`stream_app.processor`) stages the day and the stream time.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Callable, NamedTuple, Sequence

from paylimit.contracts import DeadLetter, InvalidRecord, LimitAlert, encode
from paylimit.rules import Rule
from paylimit.settings import Settings
from stream_app.alerts import alert_for, fired_in_shadow
from stream_app.counting import Decision, Outcome, day_key, decide
from stream_app.localday import local_day
from stream_app.reader import Record
from stream_app.state import DayCount
from stream_app.validation import validate


class Handled(NamedTuple):
    """One record's result: a dead letter, or the decision on its day (`key`)."""

    letter: DeadLetter | None
    key: str | None = None
    decision: Decision | None = None


def dead_letter(record: Record, error: str, reason: str, now: datetime) -> Handled:
    return Handled(DeadLetter.of(record.value or b"", topic=record.topic, partition=record.partition,
                                 offset=record.offset, error=error, reason=reason, at=now))


def handle(record: Record, day_of: Callable[[str], DayCount | None], stream_time: float | None,
           limit_of: Callable[[str], int], now: datetime, settings: Settings, rules: Sequence[Rule] = ()) -> Handled:
    """Record -> `Handled`: `day_of(key)` is the user's day as counted so far, `stream_time` the
    partition's, `limit_of(user_id)` the user's `daily_count` limit, `rules` the rules in force."""
    try:
        tx = validate(record.value, now, settings)
    except InvalidRecord as exc:
        return dead_letter(record, exc.error, exc.reason, now)
    day = local_day(tx.occurred_at, tx.timezone or settings.default_timezone)
    key = day_key(tx.user_id, day.key)
    neighbours: list[DayCount] = []
    # a 24 h window reaches the days around (daily_count, first of the rules, is a calendar day's)
    if len(rules) > 1 and any(rule.window != "calendar_day" for rule in rules):
        on = date.fromisoformat(day.key)
        around = (day_of(day_key(tx.user_id, (on + timedelta(days=n)).isoformat())) for n in (-2, -1, 1))
        neighbours = [d for d in around if d is not None]
    decision = decide(tx, day, day_of(key), stream_time, limit_of(tx.user_id), settings.retention,
                      record.partition, rules, neighbours)
    if decision.outcome is Outcome.TOO_LATE:
        return dead_letter(record, "too_late", f"its local day {day.key} ({day.zone}) ended more than "
                           f"{settings.retention} before the stream time", now)
    return Handled(None, key, decision)


@dataclass
class Outputs:
    """What a batch sends, acknowledged before its state is written (`stream_app.checkpoint`)."""

    alerts: list[tuple[LimitAlert, bool]] = field(default_factory=list)  # the alert, and whether re-sent
    letters: list[tuple[bytes | None, bytes]] = field(default_factory=list)  # key, encoded DeadLetter
    shadow: list[LimitAlert] = field(default_factory=list)  # shadow rules' alerts (never delivered)

    def __bool__(self) -> bool:
        return bool(self.alerts or self.letters or self.shadow)

    def add(self, record: Record, handled: Handled, now: datetime) -> None:
        if handled.letter is not None:
            self.letters.append((record.key, encode(handled.letter)))
        elif handled.decision is not None and handled.decision.alert_day is not None:
            day = handled.decision.alert_day
            for rule, tier in handled.decision.fired:
                if fired_in_shadow(day, rule, tier):
                    self.shadow.append(alert_for(day, now, rule, tier))
                else:
                    self.alerts.append((alert_for(day, now, rule, tier), handled.decision.outcome is Outcome.RESEND))
