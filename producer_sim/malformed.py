"""Crafted bad records, one builder per dead-letter class the stream app must produce.

Each builder starts from an ordinary transaction (so only the intended thing is wrong) and
returns the exact bytes to send. Values stay UTF-8 text, since events.jsonl stores them as text.
`too_late` is a pair: an anchor transaction of the same user dated at the send instant (it moves
the partition's stream time) followed by one dated ten days earlier.
"""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Callable

import orjson

from paylimit.contracts import Transaction, encode

if TYPE_CHECKING:
    from producer_sim.generator import SimRecord

FUTURE_YEAR = 2099  # "years ahead" of any wall clock this code will meet
TOO_LATE_BY = timedelta(days=10)  # far past the default 2-day retention


def _base(rng: random.Random, user: str, when: datetime) -> dict[str, Any]:
    tx = Transaction(
        transaction_id=str(uuid.UUID(int=rng.getrandbits(128), version=4)),
        user_id=user,
        amount=Decimal(rng.randint(100, 500_000)) / 100,
        currency="INR",
        status="succeeded",
        occurred_at=when,
        merchant_id=f"m-{rng.randrange(10_000):04d}",
        category="bills",
        timezone="Asia/Kolkata",
    )
    return tx.model_dump(mode="json")


def _dumps(doc: Any) -> bytes:
    return orjson.dumps(doc)


def _invalid_json(doc: dict[str, Any], n: int) -> bytes:
    text = _dumps(doc).decode()
    variants = [text[: len(text) // 2], "not json at all", "[1, 2, 3]", "", "{'single': 'quotes'}", '"a string"']
    return variants[n % len(variants)].encode()


def _missing_field(doc: dict[str, Any], n: int) -> bytes:
    required = ["transaction_id", "amount", "currency", "status", "occurred_at", "user_id"]
    doc.pop(required[n % len(required)])
    return _dumps(doc)


def _invalid_amount(doc: dict[str, Any], n: int) -> bytes:
    doc["amount"] = ["-5.00", "0", "abc", True, None, "NaN", {"value": 5}][n % 7]
    return _dumps(doc)


def _unknown_currency(doc: dict[str, Any], n: int) -> bytes:
    doc["currency"] = ["ABC", "RUPEE", "inr", "", "QQQ"][n % 5]
    return _dumps(doc)


def _unknown_timezone(doc: dict[str, Any], n: int) -> bytes:
    doc["timezone"] = ["Asia/Mumbai", "Mars/Olympus_Mons", "IST", "Europe/Atlantis"][n % 4]
    return _dumps(doc)


def _too_large(doc: dict[str, Any], n: int) -> bytes:
    # 20 KB is over the 16 KiB default; 70 KB is also over the dead letter's 64 KiB copy of the original
    doc["category"] = "x" * (20_000 if n % 2 == 0 else 70_000)
    return _dumps(doc)


def _too_far_in_future(doc: dict[str, Any], n: int) -> bytes:
    when = datetime.fromisoformat(doc["occurred_at"])
    doc["occurred_at"] = when.replace(year=FUTURE_YEAR - n % 3).isoformat()
    return _dumps(doc)


def _unsupported_schema_version(doc: dict[str, Any], n: int) -> bytes:
    doc["schema_version"] = [2, 99, "1.0", 0][n % 4]
    return _dumps(doc)


_BUILDERS: dict[str, Callable[[dict[str, Any], int], bytes]] = {
    "invalid_json": _invalid_json,
    "missing_field": _missing_field,
    "invalid_amount": _invalid_amount,
    "unknown_currency": _unknown_currency,
    "unknown_timezone": _unknown_timezone,
    "too_large": _too_large,
    "too_far_in_future": _too_far_in_future,
    "unsupported_schema_version": _unsupported_schema_version,
}


def craft_malformed(rng: random.Random, error: str, n: int, at: datetime) -> list["SimRecord"]:
    """The n-th crafted record(s) of class `error`, sent at virtual instant `at`."""
    from producer_sim.generator import SimRecord

    at = at.astimezone(UTC)
    user = f"malformed-{error}-{n:03d}"
    if error == "too_late":
        anchor = Transaction.model_validate(_base(rng, user, at))
        old = _dumps(_base(rng, user, at - TOO_LATE_BY))
        return [SimRecord(user, encode(anchor), None, at, "tx", True),
                SimRecord(user, old, "too_late", at, "malformed", True)]
    return [SimRecord(user, _BUILDERS[error](_base(rng, user, at), n), error, at, "malformed")]
