"""The pure counting decision: duplicates, arrival order, lateness, retention, overrides."""

from __future__ import annotations

from datetime import date, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from paylimit.contracts import Transaction
from paylimit.transaction_facts import TransactionFacts
from stream_app.counting import Decision, Outcome, decide, expired, expiry_cutoff
from stream_app.localday import day_bounds, local_day
from stream_app.state import DayCount

RETENTION = timedelta(days=2)


def tx(tid: str, at: str, status: str = "succeeded", user: str = "u1") -> TransactionFacts:
    return TransactionFacts.of(Transaction(transaction_id=tid, user_id=user, amount="5", currency="INR",
                                           status=status, occurred_at=datetime.fromisoformat(at)))


class Day:
    """Feeds transactions through `decide` the way the processor does, keeping the state."""

    def __init__(self, limit: int = 10) -> None:
        self.days: dict[str, DayCount] = {}
        self.stream_time: float | None = None
        self.limit = limit

    def feed(self, t: TransactionFacts, zone: str = "Asia/Kolkata") -> Decision:
        day = local_day(t.occurred_at, zone)
        d = decide(t, day, self.days.get(day.key), self.stream_time, self.limit, RETENTION, 0)
        if d.day:
            self.days[day.key] = d.day
        self.stream_time = d.stream_time
        return d


def test_eleventh_success_crosses_once() -> None:
    s = Day()
    outcomes = [s.feed(tx(f"t{i}", f"2026-03-10T{10 + i // 6}:{i % 6}0:00+05:30")).outcome for i in range(13)]
    assert outcomes[:10] == [Outcome.COUNTED] * 10
    assert outcomes[10] is Outcome.CROSSED
    assert outcomes[11:] == [Outcome.COUNTED] * 2
    day = s.days["2026-03-10"]
    assert day.crossing == "t10" and day.limit == 10 and not day.late
    assert day.count == 13 and day.head == [f"t{i}" for i in range(11)]  # the ids an alert lists
    assert day.first_seen_at == "2026-03-10T10:00:00+05:30"


def test_failed_and_declined_do_not_count() -> None:
    s = Day(limit=1)
    assert s.feed(tx("a", "2026-03-10T10:00:00+05:30", "failed")).outcome is Outcome.NOT_SUCCEEDED
    assert s.feed(tx("b", "2026-03-10T10:01:00+05:30", "declined")).outcome is Outcome.NOT_SUCCEEDED
    assert s.feed(tx("c", "2026-03-10T10:02:00+05:30")).outcome is Outcome.COUNTED
    assert s.feed(tx("d", "2026-03-10T10:03:00+05:30")).outcome is Outcome.CROSSED


def test_duplicates_count_once_and_the_crossing_one_resends() -> None:
    s = Day(limit=1)
    s.feed(tx("a", "2026-03-10T10:00:00+05:30"))
    assert s.feed(tx("a", "2026-03-10T10:00:00+05:30")).outcome is Outcome.DUPLICATE
    crossed = s.feed(tx("b", "2026-03-10T10:05:00+05:30"))
    assert crossed.outcome is Outcome.CROSSED
    again = s.feed(tx("b", "2026-03-10T10:05:00+05:30"))
    assert again.outcome is Outcome.RESEND and again.alert_day is crossed.day and again.day is None
    assert s.days["2026-03-10"].count == 2
    s.feed(tx("c", "2026-03-10T10:06:00+05:30"))  # after the crossing: kept as a hash
    assert s.feed(tx("c", "2026-03-10T10:06:00+05:30")).outcome is Outcome.DUPLICATE
    assert s.feed(tx("a", "2026-03-10T10:00:00+05:30")).outcome is Outcome.DUPLICATE
    assert s.days["2026-03-10"].count == 3


def test_arrival_order_decides_the_crossing_transaction() -> None:
    s = Day(limit=1)
    s.feed(tx("late-in-day", "2026-03-10T23:00:00+05:30"))
    d = s.feed(tx("early-in-day", "2026-03-10T01:00:00+05:30"))
    assert d.outcome is Outcome.CROSSED and d.day is not None and d.day.crossing == "early-in-day"


def test_late_event_within_retention_counts_and_alerts_late() -> None:
    s = Day(limit=1)
    s.feed(tx("a", "2026-03-10T10:00:00+05:30"))
    s.feed(tx("other-user-moves-time", "2026-03-11T12:00:00+05:30", user="u2"))
    d = s.feed(tx("b", "2026-03-10T11:00:00+05:30"))
    assert d.outcome is Outcome.CROSSED and d.day is not None and d.day.late


def test_event_past_retention_is_too_late_and_does_not_move_stream_time() -> None:
    s = Day()
    s.feed(tx("a", "2026-03-13T00:00:00+05:30"))  # stream time = end of the 10th + 2 days
    before = s.stream_time
    assert s.feed(tx("b", "2026-03-10T23:59:59+05:30")).outcome is Outcome.TOO_LATE
    assert s.stream_time == before
    assert s.feed(tx("c", "2026-03-11T00:00:00+05:30")).outcome is Outcome.COUNTED  # 1 s younger day


def test_limit_zero_alerts_on_the_first_success() -> None:
    assert Day(limit=0).feed(tx("a", "2026-03-10T10:00:00+05:30")).outcome is Outcome.CROSSED


def test_dst_fall_back_day_counts_all_25_hours_together() -> None:
    s = Day(limit=1)
    s.feed(tx("a", "2026-11-01T00:30:00-04:00"), "America/New_York")
    d = s.feed(tx("b", "2026-11-01T23:30:00-05:00"), "America/New_York")
    assert d.outcome is Outcome.CROSSED


def test_a_day_expires_after_twice_the_retention() -> None:
    s = Day()
    s.feed(tx("a", "2026-03-10T10:00:00+05:30"))
    end = s.days["2026-03-10"].end
    assert not expired(end, end + 2 * RETENTION.total_seconds() - 1, RETENTION)
    assert expired(end, end + 2 * RETENTION.total_seconds(), RETENTION)


@given(st.dates(min_value=date(2000, 1, 1), max_value=date(2100, 1, 1)),
       st.sampled_from(["Pacific/Kiritimati", "Pacific/Apia", "Asia/Kolkata", "UTC", "America/New_York",
                        "Etc/GMT+12", "Pacific/Pago_Pago", "Australia/Lord_Howe"]))
def test_a_day_that_expired_is_never_past_the_cleanup_cutoff(day: date, zone: str) -> None:
    """The cleanup only looks at days dated up to `expiry_cutoff`: an expired day must be one of them."""
    end = day_bounds(day, zone)[1].timestamp()
    first_expired = end + 2 * RETENTION.total_seconds()
    assert day.isoformat() <= expiry_cutoff(first_expired, RETENTION)
    # and the cutoff is not far behind: within two days of the earliest expiry in any zone
    assert date.fromisoformat(expiry_cutoff(first_expired, RETENTION)) - day <= timedelta(days=2)
