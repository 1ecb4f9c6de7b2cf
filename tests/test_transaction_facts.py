"""The worker's fast decoding accepts only what the Transaction model accepts, with the same values."""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bench.load import transaction_value
from paylimit.contracts import InvalidRecord, decode_transaction, validate_transaction
from paylimit.transaction_facts import TransactionFacts, canonical_facts, decode_facts
from producer_sim.generator import generate
from producer_sim.scenario import load_scenario

MAX = 16 * 1024
ABSENT = object()
json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
                           lambda inner: st.lists(inner, max_size=2), max_leaves=3)


def field(*near: Any) -> st.SearchStrategy[Any]:
    """Values at and around the canonical form, anything JSON, or the field left out."""
    return st.one_of(st.sampled_from(near), json_values, st.just(ABSENT))


#: amounts and timestamps at and past the canonical form's edges (both tests below use them)
AMOUNT_EDGES: list[Any] = [
    "0", "0.00", "00.5", "5.", ".5", "1e3", " 5", "5 ", "+5", "-5", "٣", "²", "5.x", "1.2.3", "5.0.", "1_000", "NaN",
    "12.50", "999999999999999.99", "1000000000000000", "0999999999999999", "0000000000000001", 0, 10**15,
    10**15 - 1, True, 5.5]
TIMESTAMP_EDGES = [
    "2026-12-01T10:00:00", "2026-12-01T10:00:00.5", "2026-12-01 10:00:00Z", "2026-12-01T10:00Z",
    "2026-12-01T10:00:00z", "2026-12-01T10:00:00.1234567Z", "2026-12-01T24:00:00Z", "2026-12-01T23:59:60Z",
    "2026-02-29T10:00:00Z", "2024-02-29T10:00:00Z", "2026-12-01T10:00:00+24:00", "2026-12-01T10:00:00+0530",
    "20261201T100000Z", "2026-W48-2T10:00:00Z", "1969-12-31T23:59:59Z", "1970-01-01T05:30:00+05:30",
    "0001-01-01T00:00:00+01:00", "2026-12-01T10:00:00,5Z", "٢٠٢٦-12-01T10:00:00Z", "2026-12-01T10:00:00.000+05:30"]


def digits(n: int) -> st.SearchStrategy[str]:
    return st.text("0123456789", min_size=n, max_size=n)


timestamps = st.one_of(
    st.builds("{}-{}-{}T{}:{}:{}{}{}".format, digits(4), digits(2), digits(2), digits(2), digits(2), digits(2),
              st.sampled_from(["", ".5", ".123456", ".1234567"]),
              st.sampled_from(["Z", "z", "", "+05:30", "-00:00", "+23:59", "+24:00", "-12:60", "+0530"])),
    st.datetimes(timezones=st.sampled_from([timezone.utc, timezone.max, timezone.min])).map(datetime.isoformat),
    st.datetimes().map(datetime.isoformat),  # no offset
    st.sampled_from(TIMESTAMP_EDGES),
)
amounts = st.one_of(
    st.decimals(allow_nan=True, allow_infinity=True).map(str),
    st.integers(-10, 10**16), st.floats(),
    st.sampled_from(AMOUNT_EDGES),
)
texts = st.one_of(st.text(min_size=0, max_size=3), st.sampled_from(["x" * 128, "x" * 129, "t-1", "\x00"]))
#: per field: valid values in the canonical form, and values at and past its edges
CANONICAL: dict[str, st.SearchStrategy[Any]] = {
    "schema_version": st.just(1) | st.just(ABSENT),
    "transaction_id": st.text(min_size=1, max_size=128),
    "user_id": st.text(min_size=1, max_size=128),
    "amount": st.sampled_from(["12.50", "0.01", "999999999999999.99", "7", 25, 10**15 - 1]),
    "currency": st.sampled_from(["INR", "USD", "EUR"]),
    "status": st.sampled_from(["succeeded", "failed", "declined"]),
    "occurred_at": st.datetimes(min_value=datetime(1971, 1, 1), max_value=datetime(9000, 1, 1),
                                timezones=st.sampled_from([timezone.utc, timezone(timedelta(hours=5, minutes=30)),
                                                           timezone(-timedelta(hours=11, minutes=59))])
                                ).map(datetime.isoformat),
    "merchant_id": st.sampled_from([None, "m-1", ABSENT]),
    "category": st.sampled_from([None, "food", ABSENT]),
    "timezone": st.sampled_from([None, "Asia/Kolkata", "America/New_York", "UTC", ABSENT]),
}
EDGES: dict[str, st.SearchStrategy[Any]] = {
    "schema_version": field(2, 1.0, True, "1"),
    "transaction_id": field("", "x" * 129, 5) | texts,
    "user_id": field("", "x" * 129, 5) | texts,
    "amount": amounts | st.just(ABSENT),
    "currency": field("inr", "XXX", ""),
    "status": field("SUCCEEDED", ""),
    "occurred_at": timestamps | st.just(ABSENT),
    "merchant_id": field(5),
    "category": field(5),
    "timezone": field("asia/kolkata", "Mars/Olympus", ""),
}


@st.composite
def records(draw: st.DrawFn) -> dict[str, Any]:
    """A canonical record with up to two fields moved to or past an edge, and maybe an extra key."""
    edged = draw(st.sets(st.sampled_from(sorted(EDGES)), max_size=2))
    record = {name: draw(EDGES[name] if name in edged else CANONICAL[name]) for name in CANONICAL}
    if draw(st.booleans()):
        record["device"] = draw(json_values)
    return {k: v for k, v in record.items() if v is not ABSENT}


def model_facts(data: dict[str, Any]) -> TransactionFacts | InvalidRecord:
    try:
        return TransactionFacts.of(validate_transaction(data))
    except InvalidRecord as exc:
        return exc


@settings(max_examples=3000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(records())
def test_fast_path_never_accepts_what_the_model_rejects(data: dict[str, Any]) -> None:
    fast, model = canonical_facts(data), model_facts(data)
    if isinstance(model, InvalidRecord):
        assert fast is None, f"accepted what the model rejects ({model.error}: {model.reason})"
    elif fast is not None:
        assert fast == model
        # the offset too, not only the instant: the alert's first_seen_at is written with it
        assert fast.occurred_at.isoformat() == model.occurred_at.isoformat()


CANONICAL_RECORD = {"transaction_id": "t-1", "user_id": "u-1", "amount": "12.50", "currency": "INR",
                    "status": "succeeded", "occurred_at": "2026-12-01T10:00:00+05:30"}


@pytest.mark.parametrize(("name", "value"), [("amount", a) for a in AMOUNT_EDGES]
                         + [("occurred_at", t) for t in TIMESTAMP_EDGES])
def test_edge_values_get_the_models_answer(name: str, value: Any) -> None:
    data = {**CANONICAL_RECORD, name: value}
    fast, model = canonical_facts(data), model_facts(data)
    assert fast is None or fast == model


@pytest.mark.parametrize("scenario", ["default", "timezones_dst", "malformed"])
def test_the_simulators_valid_records_take_the_fast_path(scenario: str) -> None:
    """The simulator's records (and the benchmark's) are what the worker reads almost always."""
    plan = generate(load_scenario(scenario), 11)
    valid = [orjson.loads(r.value) for r in plan.records if r.expect_error in (None, "too_late", "too_far_in_future")]
    valid.append(orjson.loads(transaction_value(random.Random(4), "u-2", datetime.now(timezone.utc).timestamp(),
                                                "succeeded")))
    assert len(valid) > 100
    for data in valid:
        assert canonical_facts(data) == model_facts(data)


@pytest.mark.parametrize("value", [b"{", b"[1]", None, b'{"transaction_id": "t"}',
                                   orjson.dumps({"transaction_id": "t-1", "user_id": "u", "amount": "5",
                                                 "currency": "INR", "status": "succeeded",
                                                 "occurred_at": "1969-07-20T20:17:40Z"})])
def test_the_model_classifies_what_the_fast_path_does_not_take(value: bytes | None) -> None:
    with pytest.raises(InvalidRecord) as fast:
        decode_facts(value, MAX)
    with pytest.raises(InvalidRecord) as model:
        decode_transaction(value, MAX)
    assert (fast.value.error, fast.value.reason) == (model.value.error, model.value.reason)

