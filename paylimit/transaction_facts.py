"""What counting needs of a valid transaction, decoded without a pydantic model on the hot path.

Validating every record with the `Transaction` model costs the worker more than all its
counting (a model instance, a Decimal, three Python validators: ~11 us a record). Almost every
record is in the canonical form the simulator writes, so `decode_facts` checks that form with a
few type and string tests and one anchored regular expression and hands anything else, valid or
not, to the model. It accepts only records the model accepts, with the same values
(tests/test_transaction_facts.py compares the two on generated records and edge values): the
model stays the contract, this only skips building it.
"""

from __future__ import annotations

import re
from datetime import datetime
from decimal import Decimal
from typing import Any, NamedTuple, get_args

from paylimit.contracts import (
    AMOUNT_BELOW,
    CURRENCIES,
    EPOCH,
    TEXT_MAX,
    TIMEZONES,
    Status,
    Transaction,
    load_record,
    validate_transaction,
)

STATUSES = frozenset(get_args(Status))
# RFC 3339 with an offset: the form both pydantic and datetime.fromisoformat read the same way
_TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\dT(?:[01]\d|2[0-3]):[0-5]\d:[0-5]\d(?:\.\d{1,6})?(?:Z|[+-](?:[01]\d|2[0-3]):[0-5]\d)\Z", re.ASCII)


class TransactionFacts(NamedTuple):
    transaction_id: str
    user_id: str
    status: str
    occurred_at: datetime
    timezone: str | None
    # what the limit rules filter and sum (paylimit.rules)
    amount: Decimal
    currency: str
    merchant_id: str | None
    category: str | None

    @classmethod
    def of(cls, tx: Transaction) -> "TransactionFacts":
        return cls(tx.transaction_id, tx.user_id, tx.status, tx.occurred_at, tx.timezone, tx.amount, tx.currency,
                   tx.merchant_id, tx.category)


def decode_facts(raw: bytes | None, max_bytes: int) -> TransactionFacts:
    """The facts of one raw record, or InvalidRecord with the dead-letter class (from the model)."""
    data = load_record(raw, max_bytes)
    return canonical_facts(data) or TransactionFacts.of(validate_transaction(data))


def _text(value: Any) -> bool:
    return type(value) is str and 0 < len(value) <= TEXT_MAX


def _amount(value: Any) -> bool:
    """A positive amount under AMOUNT_BELOW (1e15): an int, or a string of ASCII digits with at most
    15 before an optional point and at least one after it, not all zeros."""
    if type(value) is int:
        return 0 < value < AMOUNT_BELOW
    if type(value) is not str or not value.isascii():
        return False
    whole, point, fraction = value.partition(".")
    return (whole.isdigit() and len(whole) <= 15 and (not point or fraction.isdigit())
            and value.strip("0.") != "")


def _optional_text(value: Any) -> bool:
    return value is None or type(value) is str


def canonical_facts(data: dict[str, Any]) -> TransactionFacts | None:
    """The facts of a loaded record in the canonical form, or None: then only the model can say."""
    fields: tuple[Any, ...] = (
        data.get("transaction_id"), data.get("user_id"), data.get("amount"), data.get("currency"),
        data.get("status"), data.get("occurred_at"), data.get("timezone"))
    tx_id, user, amount, currency, status, at, zone = fields
    version = data.get("schema_version", 1)
    if not (
        type(version) is int and version == 1
        and _text(tx_id) and _text(user)
        and _amount(amount)
        and type(currency) is str and currency in CURRENCIES
        and type(status) is str and status in STATUSES
        and (zone is None or type(zone) is str and zone in TIMEZONES)
        and _optional_text(data.get("merchant_id")) and _optional_text(data.get("category"))
        and type(at) is str and _TIMESTAMP.match(at)
    ):
        return None
    try:
        occurred_at = datetime.fromisoformat(at)
    except ValueError:  # a date that does not exist (Feb 30): the model says why
        return None
    if occurred_at < EPOCH:
        return None
    return TransactionFacts(tx_id, user, status, occurred_at, zone, Decimal(amount), currency,
                            data.get("merchant_id"), data.get("category"))
