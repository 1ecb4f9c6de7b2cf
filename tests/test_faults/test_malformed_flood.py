"""Case 6: 10,000 malformed records from hypothesis strategies, interleaved with a valid scenario.

Bad JSON, wrong types, missing fields, payloads over 16 KiB and over 64 KiB, negative, zero, NaN and
absurd amounts, unknown currencies and zones, timestamps far in the future or the past. The
records are sent with the simulator's publisher (which reports where each landed); the
simulator's independent oracle (`producer_sim.oracle`) then says which ones must be dead letters
and with which error class, and which alerts the valid records must raise. Asserted: every
dead letter the oracle expects is on the DLQ at the same partition/offset with the same error
and a reason, nothing else is; the one worker never died; verify is exact; every record is
accounted for in /stats.
"""

from __future__ import annotations

import json
import random
import zoneinfo
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Callable

import pytest
from hypothesis import HealthCheck, Phase, given, seed, settings as hsettings, strategies as st

from paylimit.contracts import CURRENCIES
from paylimit.runtime.pipeline import Pipeline
from paylimit.settings import Settings
from producer_sim.generator import SimRecord, generate
from producer_sim.oracle import expected_outcome
from producer_sim.publisher import publish, publish_limits
from producer_sim.scenario import load_scenario
from tests.e2e.harness import dead_letters, original
from tests.test_faults.helpers import assert_exact

pytestmark = [pytest.mark.faults, pytest.mark.integration]

ZONES = zoneinfo.available_timezones()
REQUIRED = ["transaction_id", "user_id", "amount", "currency", "status", "occurred_at"]
DAY0 = datetime(2025, 1, 14, 12, 0, tzinfo=UTC)  # inside the default scenario's days


@st.composite
def base_doc(draw: st.DrawFn) -> dict[str, Any]:
    return {
        "schema_version": 1,
        "transaction_id": str(draw(st.uuids())),
        "user_id": f"fuzz-{draw(st.integers(0, 199))}",
        "amount": "12.50",
        "currency": "INR",
        "status": draw(st.sampled_from(["succeeded", "failed", "declined"])),
        "occurred_at": (DAY0 + timedelta(seconds=draw(st.integers(0, 86_000)))).isoformat(),
        "timezone": "Asia/Kolkata",
    }


def _json(doc: Any) -> bytes:
    # the standard library's encoder: big integers, and NaN written as the non-JSON token NaN
    return json.dumps(doc, separators=(",", ":")).encode()


def _with(field: str, values: st.SearchStrategy[Any]) -> st.SearchStrategy[bytes]:
    return st.builds(lambda d, v: _json({**d, field: v}), base_doc(), values)


junk = st.one_of(st.none(), st.booleans(), st.integers(), st.lists(st.integers(), max_size=3),
                 st.dictionaries(st.text(max_size=5), st.integers(), max_size=2), st.text(max_size=20))
bad_json = st.one_of(
    # text, not raw bytes: the simulator's events.jsonl/SentRecord keeps values as UTF-8 text, so the
    # publisher cannot send bytes that are not UTF-8 (see the report of issue 6)
    st.text(min_size=1, max_size=200).map(lambda t: ("\x00" + t).encode()),
    st.text(max_size=200).map(lambda t: ("{" + t).encode()),
    base_doc().map(lambda d: _json(d)[:-1]),  # truncated
    junk.map(_json),  # JSON, not an object
)
wrong_types = st.builds(lambda d, f, v: _json({**d, f: v}), base_doc(),
                        st.sampled_from(REQUIRED + ["timezone", "schema_version"]),
                        st.one_of(st.lists(st.integers(), min_size=1, max_size=3),
                                  st.dictionaries(st.text(max_size=5), st.integers(), min_size=1, max_size=2),
                                  st.booleans()))
missing = st.builds(lambda d, gone: _json({k: v for k, v in d.items() if k not in gone}), base_doc(),
                    st.sets(st.sampled_from(REQUIRED), min_size=1))
amounts = _with("amount", st.one_of(
    st.decimals(max_value=0, allow_nan=False, allow_infinity=False, places=2).map(str),
    st.sampled_from(["NaN", "nan", "Infinity", "-Infinity", "1e400", "0", "-0", "abc", "", "1e-400",
                     "99999999999999999999999999999999999999999"]),
    st.floats(max_value=0) | st.just(float("nan"))))
currencies = _with("currency", st.text(min_size=0, max_size=6).filter(lambda c: c not in CURRENCIES))
zones = _with("timezone", st.text(min_size=1, max_size=30).filter(lambda z: z not in ZONES))
timestamps = _with("occurred_at", st.one_of(
    st.datetimes(min_value=datetime(1970, 1, 2), max_value=datetime(2020, 1, 1), timezones=st.just(UTC)),
    st.datetimes(min_value=datetime(2100, 1, 1), max_value=datetime(9998, 1, 1), timezones=st.just(UTC)),
).map(lambda t: t.isoformat()))
# sizes straddling both limits: 16 KiB (too_large) and 64 KiB (the DLQ keeps the first 64 KiB)
huge = st.builds(lambda d, n: _json({**d, "category": "x" * n}), base_doc(),
                 st.one_of(st.integers(16 * 1024, 64 * 1024), st.integers(64 * 1024 + 1, 80 * 1024)))

QUOTAS: list[tuple[st.SearchStrategy[bytes], int]] = [
    (bad_json, 1500), (wrong_types, 1800), (missing, 1500), (amounts, 1700), (currencies, 1000),
    (zones, 1000), (timestamps, 1400), (huge, 100),
]


def collect(strategy: st.SearchStrategy[bytes], n: int) -> list[bytes]:
    """`n` values drawn by hypothesis (generation only: this feeds a system, it asserts nothing)."""
    out: list[bytes] = []
    rounds = 0
    while len(out) < n and rounds < 20:
        rounds += 1

        @hsettings(max_examples=n - len(out), database=None, phases=[Phase.generate], deadline=None,
                   suppress_health_check=list(HealthCheck))
        @seed(rounds)
        @given(strategy)
        def gather(value: bytes) -> None:
            out.append(value)

        gather()
    return out[:n]


def test_ten_thousand_malformed_records(make_settings: Callable[..., Settings], tmp_path: Path) -> None:
    settings = make_settings()
    fuzz = [v for strategy, n in QUOTAS for v in collect(strategy, n)]
    assert len(fuzz) == 10_000
    plan = generate(load_scenario("default"), 61)
    rng = random.Random(61)
    now = datetime.now(UTC)
    bad = [SimRecord(key=f"fuzz-{rng.randrange(200)}", value=v, expect_error=None, at=now, kind="malformed")
           for v in fuzz]
    rng.shuffle(bad)
    # the first valid records set every partition's stream time, so the far-past ones are too_late
    head, tail = plan.records[:300], plan.records[300:]
    mixed = list(tail)
    for record in bad:
        mixed.insert(rng.randrange(len(mixed) + 1), record)
    publish_limits(settings, plan.overrides)
    result = publish(settings, head + mixed)
    assert not result.failed
    outcome = expected_outcome(result.sent, settings, datetime.now(UTC), plan.overrides)
    run = tmp_path / "run"
    run.mkdir()
    (run / "expected_alerts.jsonl").write_text("".join(a.model_dump_json() + "\n" for a in outcome.alerts))

    pipeline = Pipeline(settings)
    pipeline.start()
    try:
        pipeline.wait_drained(timeout=240)
        worker = pipeline.workers[0]
        assert worker.alive and worker.restarts == 0  # the worker never died
        metrics = pipeline.worker_metrics()
        assert metrics["consumed"] == len(result.sent)
        assert metrics["counted"] == outcome.counted

        fuzz_seqs = {r.seq for r in result.sent if r.key and r.key.startswith("fuzz-")}
        expected = {(d.partition, d.offset): d.error for d in outcome.dead_letters.values()}
        flagged = sum(1 for s in fuzz_seqs if s in outcome.dead_letters)
        assert flagged >= 9_900, f"only {flagged} of the generated records are malformed by the contract"
        letters = dead_letters(settings)
        got = {(d.source_partition, d.source_offset): d.error for d in letters}
        assert got == expected
        assert all(d.reason and d.source_topic == settings.topic_transactions for d in letters)
        for d in letters:
            if d.original_truncated:
                assert len(original(d)) == 64 * 1024
                assert d.original_sha256 is not None
        big = [d for d in letters if d.original_truncated]
        assert len(big) > 10 and all(d.error == "too_large" for d in big)
        assert {d.error for d in letters} >= {"invalid_json", "missing_field", "invalid_amount", "unknown_currency",
                                              "unknown_timezone", "too_large", "too_late", "too_far_in_future"}
        assert_exact(settings, run)
    finally:
        pipeline.stop()
