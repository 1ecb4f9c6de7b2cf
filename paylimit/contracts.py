"""Every message paylimit writes or reads, as pydantic v2 models, plus the topic-independent decoding rules.

Imported by all three services: the simulator validates before sending, the stream app on receipt,
the notifier on receipt. `decode_transaction` turns raw bytes into a `Transaction` or raises
`InvalidRecord` carrying the machine-readable error class that goes into the dead letter.
"""

from __future__ import annotations

import base64
import hashlib
from datetime import date, datetime, timezone
from decimal import Decimal
from typing import Annotated, Any, Final, Literal
from zoneinfo import ZoneInfo, available_timezones

import orjson
import pycountry
from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

SCHEMA_VERSION: Final = 1
DEAD_LETTER_ORIGINAL_MAX = 64 * 1024

CURRENCIES = frozenset(c.alpha_3 for c in pycountry.currencies)
TIMEZONES = frozenset(available_timezones())

Status = Literal["succeeded", "failed", "declined"]


def _known_currency(code: str) -> str:
    if code not in CURRENCIES:
        raise ValueError(f"unknown ISO 4217 currency {code!r}")
    return code


def _known_timezone(name: str | None) -> str | None:
    if name is not None and name not in TIMEZONES:
        raise ValueError(f"unknown IANA time zone {name!r}")
    return name


EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def _not_before_epoch(at: datetime) -> datetime:
    # earlier dates are no payment, and near year 1 a local day cannot even be computed
    if at < EPOCH:
        raise ValueError("a payment dated before 1970-01-01T00:00:00Z")
    return at


TEXT_MAX = 128
#: the highest daily limit: an alert lists the ids up to the crossing one, and the worker keeps them
#: in the day's state, which must stay below the broker's message size (stream_app/state.py)
MAX_DAILY_LIMIT = 1_000
AMOUNT_BELOW = Decimal("1e15")
NonEmpty = Annotated[str, Field(min_length=1, max_length=TEXT_MAX)]


class Transaction(BaseModel):
    """One payment event on `payments.transactions`, keyed by user_id."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    schema_version: Literal[1] = SCHEMA_VERSION
    transaction_id: NonEmpty
    user_id: NonEmpty
    amount: Annotated[Decimal, Field(gt=0, lt=AMOUNT_BELOW, allow_inf_nan=False)]
    currency: Annotated[str, AfterValidator(_known_currency)]
    status: Status
    occurred_at: Annotated[AwareDatetime, AfterValidator(_not_before_epoch)]
    merchant_id: str | None = None
    category: str | None = None
    timezone: Annotated[str | None, AfterValidator(_known_timezone)] = None

    @field_validator("amount", mode="before")
    @classmethod
    def _amount_is_number_or_string(cls, v: Any) -> Any:
        # bool is an int in Python; a payment amount of `true` is a mistake, not 1.
        if isinstance(v, bool) or not isinstance(v, (int, float, str, Decimal)):
            raise ValueError("amount must be a decimal number or a decimal string")
        return v

    def zone(self, default: str) -> ZoneInfo:
        return ZoneInfo(self.timezone or default)


class AlertFacts(BaseModel):
    """What an alert asserts; the oracle's expected alerts are exactly this, and `verify` compares it.

    Version 2 adds the rule and tier that fired, the rule's measure and the measure's value. The
    default rule's over-limit alert (`daily_count`, `alert`) is written as version 1 (its fields
    mean what they meant: a version 1 consumer reads it as before); every other alert is version 2,
    which a version 1 consumer refuses rather than take a heads-up for an over-limit alert. A
    version 1 record read here is that alert."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    schema_version: Literal[1, 2] = SCHEMA_VERSION
    alert_id: str
    user_id: str
    local_date: date  # the local date the window starts on
    timezone: str
    limit: Annotated[int | Decimal, Field(union_mode="left_to_right")]  # a count, or an amount
    count: int  # the transactions the rule counted in the window, up to the one that fired it
    crossing_transaction_id: str
    transaction_ids: list[str]  # the counted ids, in arrival order, up to and including the crossing one
    window_start: AwareDatetime  # local midnight starting local_date, with the zone's offset
    window_end: AwareDatetime  # the next local midnight
    first_seen_at: AwareDatetime  # occurred_at of the first transaction counted that day
    late: bool
    rule: str = "daily_count"
    tier: Literal["warn", "alert"] = "alert"
    measure: Literal["count", "amount"] = "count"
    value: Annotated[int | Decimal | None, Field(union_mode="left_to_right")] = None  # the measure; default: count

    @model_validator(mode="after")
    def _value_of_version_1(self) -> "AlertFacts":
        if self.value is None:
            object.__setattr__(self, "value", self.count)  # frozen; a version 1 alert's measure is its count
        return self


ExpectedAlert = AlertFacts


class LimitAlert(AlertFacts):
    """A user went over their daily limit; on `payments.alerts`, keyed by user_id."""

    detected_at: AwareDatetime  # wall clock of the worker that raised it


def alert_id_for(user_id: str, local_date: date, rule: str = "daily_limit") -> str:
    """Deterministic alert id: the same user, local day and rule always give the same id."""
    return hashlib.sha256(f"{rule}|{user_id}|{local_date.isoformat()}".encode()).hexdigest()[:32]


class SentRecord(BaseModel):
    """One line of the simulator's `events.jsonl`: a record exactly as sent, and where it landed."""

    model_config = ConfigDict(frozen=True)

    seq: int
    key: str | None
    value: str  # the exact record value sent (UTF-8 text; malformed ones included)
    partition: int
    offset: int
    produced_at: AwareDatetime
    expect_error: str | None = None  # the dead-letter class the generator meant this record to get


class Notification(LimitAlert):
    """A delivered alert as the notifications log holds it."""

    delivered_at: AwareDatetime


class DeadLetter(BaseModel):
    """A record the stream app could not use, on `payments.transactions.dlq`."""

    model_config = ConfigDict(frozen=True)

    schema_version: Literal[1] = SCHEMA_VERSION
    source_topic: str
    source_partition: int
    source_offset: int
    original: str  # base64
    original_truncated: bool = False
    original_sha256: str | None = None
    error: str
    reason: str
    dead_lettered_at: AwareDatetime

    @classmethod
    def of(
        cls,
        raw: bytes,
        *,
        topic: str,
        partition: int,
        offset: int,
        error: str,
        reason: str,
        at: datetime,
    ) -> "DeadLetter":
        truncated = len(raw) > DEAD_LETTER_ORIGINAL_MAX
        return cls(
            source_topic=topic,
            source_partition=partition,
            source_offset=offset,
            original=base64.b64encode(raw[:DEAD_LETTER_ORIGINAL_MAX]).decode(),
            original_truncated=truncated,
            original_sha256=hashlib.sha256(raw).hexdigest() if truncated else None,
            error=error,
            reason=reason,
            dead_lettered_at=at,
        )


class NotificationDeadLetter(BaseModel):
    """A notification the webhook did not take, on `payments.notifications.dlq` (key = alert_id).

    The notifications log has it all the same; `paylimit webhook redeliver` POSTs it again."""

    model_config = ConfigDict(frozen=True)

    schema_version: Literal[1] = SCHEMA_VERSION
    alert_id: str
    notification: Notification  # exactly what was POSTed (and logged)
    webhook: str  # scheme://host[:port] only: the rest of the URL may hold a token
    error: str  # the failure's kind: timeout, connection, protocol, redirect, http_4xx, http_5xx
    status: int | None = None  # the HTTP status, when there was one
    reason: str
    attempts: int  # POSTs of this alert before it was given up
    dead_lettered_at: AwareDatetime


class LimitOverride(BaseModel):
    """A per-user limit on the compacted `payments.limits` topic (key = user_id)."""

    model_config = ConfigDict(frozen=True)

    user_id: NonEmpty
    limit: int = Field(ge=0, le=MAX_DAILY_LIMIT)


class InvalidRecord(Exception):
    """A record that must go to the dead-letter topic; `error` is the machine-readable class."""

    def __init__(self, error: str, reason: str) -> None:
        super().__init__(reason)
        self.error = error
        self.reason = reason


_FIELD_ERRORS = {"amount": "invalid_amount", "currency": "unknown_currency", "timezone": "unknown_timezone"}


def _classify(exc: ValidationError) -> InvalidRecord:
    first = exc.errors()[0]
    field = str(first["loc"][0]) if first["loc"] else ""
    if first["type"] == "missing":
        return InvalidRecord("missing_field", f"required field {field!r} is missing")
    if field == "schema_version":
        return InvalidRecord("unsupported_schema_version", f"schema_version {first.get('input')!r} is not supported (only 1)")
    error = _FIELD_ERRORS.get(field, "invalid_field")
    return InvalidRecord(error, f"field {field!r}: {first['msg']}")


def load_record(raw: bytes | None, max_bytes: int) -> dict[str, Any]:
    """A raw record as its JSON object (not yet validated), or InvalidRecord."""
    if raw is None:
        raise InvalidRecord("invalid_json", "record has no value")
    if len(raw) > max_bytes:
        raise InvalidRecord("too_large", f"record is {len(raw)} bytes, over the {max_bytes}-byte limit")
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidRecord("invalid_json", f"not valid UTF-8 JSON: {exc}") from None
    if not isinstance(data, dict):
        raise InvalidRecord("invalid_json", f"expected a JSON object, got {type(data).__name__}")
    return data


def validate_transaction(data: dict[str, Any]) -> Transaction:
    """A loaded record as a Transaction, or InvalidRecord with the dead-letter class."""
    try:
        return Transaction.model_validate(data)
    except ValidationError as exc:
        raise _classify(exc) from None


def decode_transaction(raw: bytes | None, max_bytes: int) -> Transaction:
    """Parse and validate one raw record, or raise InvalidRecord with the dead-letter class."""
    return validate_transaction(load_record(raw, max_bytes))


def encode(model: BaseModel) -> bytes:
    """The wire form of every message: compact JSON, UTF-8."""
    return model.model_dump_json().encode()
