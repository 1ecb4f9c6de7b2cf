"""Is a raw record usable? The contract's checks plus the wall-clock bound on event time."""

from __future__ import annotations

from datetime import datetime

from paylimit.contracts import InvalidRecord
from paylimit.settings import Settings
from paylimit.transaction_facts import TransactionFacts, decode_facts


def validate(raw: bytes | None, now: datetime, settings: Settings) -> TransactionFacts:
    """What counting needs of the record, or InvalidRecord with the dead-letter class."""
    tx = decode_facts(raw, settings.max_record_bytes)
    if tx.occurred_at > now + settings.max_clock_skew:
        raise InvalidRecord(
            "too_far_in_future",
            f"occurred_at {tx.occurred_at.isoformat()} is more than {settings.max_clock_skew} ahead of the wall clock",
        )
    return tx
