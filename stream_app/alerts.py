"""The LimitAlert for a day that went over its limit: deterministic except for `detected_at`."""

from __future__ import annotations

from datetime import date, datetime

from paylimit.contracts import LimitAlert, alert_id_for
from stream_app.state import DayCount
from stream_app.localday import day_bounds


def alert_for(day: DayCount, detected_at: datetime) -> LimitAlert:
    assert day.crossing is not None and day.limit is not None
    local_date = date.fromisoformat(day.date)
    start, end = day_bounds(local_date, day.zone)
    return LimitAlert(
        alert_id=alert_id_for(day.user_id, local_date),
        user_id=day.user_id,
        local_date=local_date,
        timezone=day.zone,
        limit=day.limit,
        count=len(day.head),  # the ids up to and including the crossing one
        crossing_transaction_id=day.crossing,
        transaction_ids=list(day.head),
        window_start=start,
        window_end=end,
        first_seen_at=datetime.fromisoformat(day.first_seen_at),
        detected_at=detected_at,
        late=day.late,
    )
