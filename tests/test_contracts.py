"""Contracts: how raw transaction bytes are accepted or classified for the dead-letter topic."""

from __future__ import annotations

import base64
import hashlib
from datetime import date, datetime, timezone
from decimal import Decimal
from typing import Any

import orjson
import pytest

from paylimit.contracts import (
    DEAD_LETTER_ORIGINAL_MAX,
    DeadLetter,
    InvalidRecord,
    Transaction,
    alert_id_for,
    decode_transaction,
)

MAX = 16 * 1024


def tx(**changes: Any) -> dict[str, Any]:
    value: dict[str, Any] = {
        "transaction_id": "t-1",
        "user_id": "u-1",
        "amount": "12.50",
        "currency": "INR",
        "status": "succeeded",
        "occurred_at": "2025-03-01T10:00:00+05:30",
    }
    value.update(changes)
    return {k: v for k, v in value.items() if v is not ...}


def raw(value: Any) -> bytes:
    return orjson.dumps(value)


def error_of(data: bytes | None) -> str:
    with pytest.raises(InvalidRecord) as info:
        decode_transaction(data, MAX)
    assert info.value.reason  # always a human-readable sentence too
    return info.value.error


def test_valid_transaction() -> None:
    t = decode_transaction(raw(tx(merchant_id="m-9", category="bills", timezone="America/New_York")), MAX)
    assert t.amount == Decimal("12.50") and t.schema_version == 1
    assert t.occurred_at.utcoffset() is not None
    assert t.zone("Asia/Kolkata").key == "America/New_York"
    assert decode_transaction(raw(tx()), MAX).zone("Asia/Kolkata").key == "Asia/Kolkata"


@pytest.mark.parametrize("amount", ["12.50", 12.5, 7, "0.01", "1e3"])
def test_amount_string_or_number(amount: Any) -> None:
    assert decode_transaction(raw(tx(amount=amount)), MAX).amount == Decimal(str(amount))


@pytest.mark.parametrize("amount", [0, "0", -1, "-5.00", "NaN", "Infinity", "-Infinity", True, False, "abc", None, [1], {"v": 1}])
def test_bad_amount(amount: Any) -> None:
    assert error_of(raw(tx(amount=amount))) == "invalid_amount"


def test_nan_literal_in_json_is_not_json() -> None:
    # NaN / Infinity are not JSON tokens at all
    assert error_of(b'{"amount": NaN}') == "invalid_json"
    assert error_of(raw(tx()).replace(b'"12.50"', b"Infinity")) == "invalid_json"


@pytest.mark.parametrize("currency", ["XYZ", "inr", "", "RUPEE"])
def test_unknown_currency(currency: str) -> None:
    assert error_of(raw(tx(currency=currency))) == "unknown_currency"


@pytest.mark.parametrize("currency", ["INR", "USD", "EUR", "JPY", "BHD"])
def test_known_currency(currency: str) -> None:
    assert decode_transaction(raw(tx(currency=currency)), MAX).currency == currency


@pytest.mark.parametrize("zone", ["Mars/Olympus", "IST", "Asia/Calcutta_", ""])
def test_unknown_timezone(zone: str) -> None:
    assert error_of(raw(tx(timezone=zone))) == "unknown_timezone"


@pytest.mark.parametrize("field", ["transaction_id", "user_id", "amount", "currency", "status", "occurred_at"])
def test_missing_field(field: str) -> None:
    assert error_of(raw(tx(**{field: ...}))) == "missing_field"


def test_naive_datetime_rejected() -> None:
    assert error_of(raw(tx(occurred_at="2025-03-01T10:00:00"))) == "invalid_field"


def test_unknown_status_rejected() -> None:
    assert error_of(raw(tx(status="pending"))) == "invalid_field"


def test_schema_version_missing_means_1() -> None:
    assert decode_transaction(raw(tx()), MAX).schema_version == 1
    assert decode_transaction(raw(tx(schema_version=1)), MAX).schema_version == 1


@pytest.mark.parametrize("version", [2, 0, "2"])
def test_unsupported_schema_version(version: Any) -> None:
    assert error_of(raw(tx(schema_version=version))) == "unsupported_schema_version"


def test_too_large() -> None:
    big = raw(tx(category="x" * MAX))
    assert error_of(big) == "too_large"
    # the limit is checked before parsing: an oversized non-JSON record is too_large too
    assert error_of(b"\xff" * (MAX + 1)) == "too_large"


def test_exactly_at_limit_is_accepted() -> None:
    base = raw(tx(category=""))
    padded = raw(tx(category="x" * (MAX - len(base))))
    assert len(padded) == MAX
    decode_transaction(padded, MAX)


@pytest.mark.parametrize("data", [b"not json", b"{", b"\xff\xfe", b"", None])
def test_not_json(data: bytes | None) -> None:
    assert error_of(data) == "invalid_json"


@pytest.mark.parametrize("data", [b"[1, 2]", raw([tx()]), b'"text"', b"42", b"null"])
def test_json_not_an_object(data: bytes) -> None:
    assert error_of(data) == "invalid_json"


def test_extra_fields_ignored() -> None:
    assert decode_transaction(raw(tx(device="ios")), MAX).transaction_id == "t-1"


def test_transaction_is_frozen() -> None:
    t = Transaction.model_validate(tx())
    with pytest.raises(Exception):
        t.user_id = "other"  # type: ignore[misc]


def test_alert_id_deterministic() -> None:
    a = alert_id_for("u-1", date(2025, 3, 1))
    assert a == alert_id_for("u-1", date(2025, 3, 1))
    assert a != alert_id_for("u-1", date(2025, 3, 2))
    assert a != alert_id_for("u-2", date(2025, 3, 1))
    assert a != alert_id_for("u-1", date(2025, 3, 1), rule="other")


AT = datetime(2025, 3, 1, tzinfo=timezone.utc)


def dead_letter(data: bytes) -> DeadLetter:
    return DeadLetter.of(data, topic="payments.transactions", partition=3, offset=42, error="too_large",
                         reason="big", at=AT)


def test_dead_letter_small_original_kept_whole() -> None:
    dl = dead_letter(b"not json")
    assert base64.b64decode(dl.original) == b"not json"
    assert not dl.original_truncated and dl.original_sha256 is None
    assert (dl.source_topic, dl.source_partition, dl.source_offset) == ("payments.transactions", 3, 42)
    assert dl.schema_version == 1


def test_dead_letter_exactly_64k_not_truncated() -> None:
    data = b"a" * DEAD_LETTER_ORIGINAL_MAX
    dl = dead_letter(data)
    assert base64.b64decode(dl.original) == data and not dl.original_truncated


def test_dead_letter_truncated_over_64k() -> None:
    assert DEAD_LETTER_ORIGINAL_MAX == 64 * 1024
    data = bytes(range(256)) * 300  # 76,800 bytes
    dl = dead_letter(data)
    assert dl.original_truncated
    assert base64.b64decode(dl.original) == data[: 64 * 1024]
    assert dl.original_sha256 == hashlib.sha256(data).hexdigest()
    assert DeadLetter.model_validate_json(dl.model_dump_json()) == dl
