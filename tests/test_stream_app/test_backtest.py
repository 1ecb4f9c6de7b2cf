"""The back-test's replay (pure): over a scenario's records as they land on the partitions, the
worker's evaluation gives exactly the oracle's alerts; `compare` tells new users from lost ones."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from paylimit.contracts import SentRecord
from paylimit.kafka import partition_for
from paylimit.rules import effective_rules
from paylimit.settings import Settings
from paylimit.verify import verify
from producer_sim.generator import generate
from producer_sim.oracle import expected_outcome
from producer_sim.scenario import load_scenario
from stream_app.backtest import Replay, compare
from stream_app.reader import Record


def _landed(records: list, partitions: int) -> list[SentRecord]:
    """The records as a topic of `partitions` would hold them: keyed ones by the key's hash, in order."""
    offsets = [0] * partitions
    out = []
    for seq, r in enumerate(records):
        p = partition_for(r.key.encode(), partitions) if r.key is not None else 0
        out.append(SentRecord(seq=seq, key=r.key, value=r.value.decode(), partition=p, offset=offsets[p],
                              produced_at=r.at))
        offsets[p] += 1
    return out


@pytest.mark.parametrize("name", ["limit_rules", "rule_windows", "out_of_order_late", "duplicates", "malformed"])
def test_a_replay_raises_what_the_oracle_expects(name: str) -> None:
    settings = Settings(kafka_bootstrap_servers="unused:9092")
    plan = generate(load_scenario(name), seed=7)
    sent = _landed(plan.records, 6)
    now = datetime.now(UTC)
    replay = Replay(settings, effective_rules({r.name: r for r in plan.scenario.rules}, settings.daily_limit),
                    lambda user: plan.overrides.get(user, settings.daily_limit), now)
    for r in sorted(sent, key=lambda r: (r.partition, r.offset)):
        replay.feed(Record("t", r.partition, r.offset, r.key.encode() if r.key else None, r.value.encode()))
    expected = expected_outcome(sent, settings, now, plan.overrides, plan.scenario.rules).alerts
    result = verify(expected, replay.alerts.values())
    assert result.clean and result.expected > 0, result.as_json()


def test_compare_tells_new_users_from_those_no_longer_alerted() -> None:
    settings = Settings(kafka_bootstrap_servers="unused:9092")
    at = datetime(2024, 10, 7, 4, tzinfo=UTC)
    tx = [Record("t", 0, n, b"u", (f'{{"transaction_id":"t{n}","user_id":"{u}","amount":"1","currency":"INR",'
                                     f'"status":"succeeded","occurred_at":"{at.isoformat()}"}}').encode())
          for n, u in enumerate(["ann"] * 3 + ["bob"] * 2)]

    def alerts(limit: int) -> list:
        replay = Replay(settings.model_copy(update={"daily_limit": limit}), effective_rules({}, limit),
                        lambda _u: limit, datetime.now(UTC))
        for record in tx:
            replay.feed(record)
        return list(replay.alerts.values())

    rows = {(r.rule, r.tier): r for r in compare(alerts(1), alerts(2))}
    alert = rows["daily_count", "alert"]
    assert (alert.local_date, alert.new, alert.no_longer) == (date(2024, 10, 7), ["bob"], [])
    assert alert.earliest == at and sorted(alert.users) == ["ann", "bob"] and list(alert.in_force) == ["ann"]


def test_a_long_replay_forgets_the_days_the_worker_forgets() -> None:
    settings = Settings(kafka_bootstrap_servers="unused:9092")
    replay = Replay(settings, effective_rules({}, 10), lambda _u: 10, datetime.now(UTC))
    for n, day in enumerate(["2024-10-01", "2024-10-02", "2024-10-20"]):
        replay.feed(Record("t", 0, n, b"u", (f'{{"transaction_id":"t{n}","user_id":"u","amount":"1","currency":"INR",'
                                             f'"status":"succeeded","occurred_at":"{day}T06:00:00+00:00"}}').encode()))
    assert list(replay.days) == ["u|2024-10-20"]


def test_a_replay_raises_no_shadow_alert_as_the_live_system_delivers_none() -> None:
    settings = Settings(kafka_bootstrap_servers="unused:9092")
    plan = generate(load_scenario("limit_rules"), seed=7)
    sent = _landed(plan.records, 6)
    now = datetime.now(UTC)
    quiet = plan.scenario.rules[0].name
    rules = [r.model_copy(update={"shadow": r.name == quiet}) for r in plan.scenario.rules]
    replay = Replay(settings, effective_rules({r.name: r for r in rules}, settings.daily_limit),
                    lambda user: plan.overrides.get(user, settings.daily_limit), now)
    for r in sorted(sent, key=lambda r: (r.partition, r.offset)):
        replay.feed(Record("t", r.partition, r.offset, r.key.encode() if r.key else None, r.value.encode()))
    expected = expected_outcome(sent, settings, now, plan.overrides, rules).alerts
    result = verify(expected, replay.alerts.values())
    assert result.clean and result.expected > 0, result.as_json()
    everything = expected_outcome(sent, settings, now, plan.overrides, plan.scenario.rules).alerts
    assert quiet not in {a.rule for a in replay.alerts.values()} and quiet in {a.rule for a in everything}
