"""The generator: deterministic per seed, valid records valid, malformed ones meant for their class."""

from __future__ import annotations

from datetime import timedelta

import pytest

from paylimit.contracts import InvalidRecord, decode_transaction
from paylimit.settings import get_settings
from producer_sim.generator import generate
from producer_sim.scenario import MALFORMED_CLASSES, load_scenario, scenario_names


@pytest.mark.parametrize("name", scenario_names())
def test_same_seed_gives_identical_bytes(name: str) -> None:
    scenario = load_scenario(name)
    a, b = generate(scenario, 42), generate(scenario, 42)
    assert [(r.key, r.value, r.expect_error, r.at) for r in a.records] == \
           [(r.key, r.value, r.expect_error, r.at) for r in b.records]
    assert a.overrides == b.overrides


def test_different_seed_gives_different_events() -> None:
    scenario = load_scenario("default")
    assert [r.value for r in generate(scenario, 1).records] != [r.value for r in generate(scenario, 2).records]


def test_default_is_a_few_thousand_events_over_two_days() -> None:
    plan = generate(load_scenario("default"), 7)
    assert 1000 <= len(plan.records) <= 5000
    assert 50 <= len({r.key for r in plan.records}) <= 250
    kinds = {r.kind for r in plan.records}
    assert {"tx", "duplicate", "malformed"} <= kinds


def test_every_valid_record_decodes_and_every_malformed_one_is_rejected_as_meant() -> None:
    settings = get_settings()
    plan = generate(load_scenario("malformed"), 5)
    seen = set()
    for record in plan.records:
        record.value.decode("utf-8")  # events.jsonl keeps values as text
        if record.expect_error in (None, "too_late", "too_far_in_future"):
            tx = decode_transaction(record.value, settings.max_record_bytes)
            assert tx.user_id == record.key
            if record.expect_error == "too_far_in_future":
                assert tx.occurred_at.year >= 2090
        else:
            with pytest.raises(InvalidRecord) as info:
                decode_transaction(record.value, settings.max_record_bytes)
            assert info.value.error == record.expect_error, record.value[:200]
        seen.add(record.expect_error)
    assert set(MALFORMED_CLASSES) <= seen


def test_users_and_span_options_rescale() -> None:
    scenario = load_scenario("default")
    small = generate(scenario, 3, users=20, span=timedelta(hours=6))
    full = generate(scenario, 3)
    assert len(small.records) < len(full.records) / 4
    population_users = {r.key for r in small.records if r.key and r.key.startswith(("regular-", "heavy-"))}
    assert 15 <= len(population_users) <= 25


def test_overrides_come_from_groups_and_explicit_limits() -> None:
    plan = generate(load_scenario("limit_overrides"), 1)
    assert plan.overrides["strict-0000"] == 3
    assert plan.overrides["generous-0009"] == 20
    assert plan.overrides["blocked-0000"] == 0
    assert plan.overrides["one-0001"] == 1
    assert plan.overrides["standard-0000"] == 2
    assert "standard-0001" not in plan.overrides
