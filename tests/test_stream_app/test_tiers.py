"""The limit rules in the worker's pure core (`stream_app.tiers` through `handle`): heads-ups and
alerts, amounts, filters, scope, a replayed crossing, a rule changed mid-day; and the same records
through the independent oracle give the same alerts."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any, Sequence

from paylimit.contracts import AlertFacts, SentRecord
from paylimit.rules import Rule, effective_rules, parse_rules
from paylimit.settings import get_settings
from producer_sim.oracle import expected_outcome
from stream_app.counting import Outcome
from stream_app.handling import Outputs, handle
from stream_app.reader import Record
from stream_app.state import decode_day, encode_day

SETTINGS = get_settings(kafka_bootstrap_servers="localhost:1", daily_limit=10)
NOW = datetime(2026, 3, 20, tzinfo=timezone.utc)

RULES = parse_rules("""
rules:
  - name: inr_day
    measure: amount
    limit: "1000.00"
    filter: {currency: INR}
  - name: p2p_day
    limit: 2
    filter: {p2p_only: true}
    tiers: [{name: alert}]
  - name: vip_movies
    limit: 1
    filter: {categories: [movie_tickets]}
    users: [vip]
    tiers: [{name: warn, percent: 50}, {name: alert}]
""", "test")


def tx(tid: str, minute: int, amount: str = "10.00", currency: str = "INR", user: str = "u1",
       merchant: str | None = "m-1", category: str = "food", status: str = "succeeded") -> dict[str, Any]:
    return {"transaction_id": tid, "user_id": user, "amount": amount, "currency": currency, "status": status,
            "occurred_at": f"2026-03-10T10:{minute:02d}:00+05:30", "merchant_id": merchant, "category": category}


class Worker:
    """The pure core over records of one partition, its days kept as the table keeps them (encoded)."""

    def __init__(self) -> None:
        self.days: dict[str, bytes] = {}
        self.stream_time: float | None = None
        self.offset = 0
        self.sent: list[tuple[AlertFacts, bool]] = []
        self.shadow: list[AlertFacts] = []

    def feed(self, doc: dict[str, Any], rules: Sequence[Rule] = RULES) -> Outcome | None:
        record = Record("tx", 0, self.offset, doc["user_id"].encode(), json.dumps(doc).encode())
        self.offset += 1
        day_of = lambda key: decode_day(key, self.days[key]) if key in self.days else None  # noqa: E731
        handled = handle(record, day_of, self.stream_time, lambda user: SETTINGS.daily_limit, NOW, SETTINGS,
                         effective_rules({r.name: r for r in rules}, SETTINGS.daily_limit))
        assert handled.decision is not None and handled.key is not None
        if handled.decision.day is not None:
            self.days[handled.key] = encode_day(handled.decision.day)  # a round trip through the codec
        self.stream_time = handled.decision.stream_time
        outputs = Outputs()
        outputs.add(record, handled, NOW)
        self.sent += outputs.alerts
        self.shadow += outputs.shadow
        return handled.decision.outcome

    def fired(self) -> list[tuple[str, str, str]]:
        return [(a.rule, a.tier, a.crossing_transaction_id) for a, _ in self.sent]


def test_daily_count_warns_at_80_percent_then_alerts_over_the_limit_each_once() -> None:
    w = Worker()
    for i in range(14):
        w.feed(tx(f"t{i}", i, currency="USD"))
    assert w.fired() == [("daily_count", "warn", "t7"), ("daily_count", "alert", "t10")]
    warn, over = (a for a, _ in w.sent)
    assert (warn.schema_version, warn.count, warn.value, warn.limit, warn.transaction_ids) == (2, 8, 8, 10, [f"t{i}" for i in range(8)])
    assert (over.schema_version, over.count, over.value, over.limit) == (1, 11, 11, 10)


def test_an_amount_rule_sums_one_currency_exactly_and_fires_on_the_cent_over() -> None:
    w = Worker()
    w.feed(tx("a", 0, "799.99"))
    w.feed(tx("usd", 1, "5000", currency="USD"))  # another currency: not counted
    assert w.fired() == []
    w.feed(tx("b", 2, "0.01"))  # 800.00: 80 % exactly
    w.feed(tx("c", 3, "200.00"))  # 1000.00: at the limit, not over it
    w.feed(tx("d", 4, "0.01"))  # 1000.01: over
    assert [f for f in w.fired() if f[0] == "inr_day"] == [("inr_day", "warn", "b"), ("inr_day", "alert", "d")]
    over = [a for a, _ in w.sent if a.rule == "inr_day" and a.tier == "alert"][0]
    assert (over.measure, over.value, over.limit, over.count, over.transaction_ids) == (
        "amount", Decimal("1000.01"), Decimal("1000.00"), 4, [])


def test_filters_and_scope_choose_what_a_rule_counts() -> None:
    w = Worker()
    w.feed(tx("m1", 0, category="movie_tickets"))  # not vip
    w.feed(tx("v1", 1, user="vip", category="movie_tickets"))  # 1 of 1: the heads-up at 50 %
    w.feed(tx("v2", 2, user="vip", category="food"))
    w.feed(tx("v3", 3, user="vip", category="movie_tickets"))  # over
    for i in range(3):
        w.feed(tx(f"p{i}", 10 + i, merchant=None, category="p2p"))
    assert [f for f in w.fired() if f[0] != "daily_count"] == [
        ("vip_movies", "warn", "v1"), ("vip_movies", "alert", "v3"), ("p2p_day", "alert", "p2")]


def test_a_replayed_crossing_sends_every_alert_it_fired_again_and_counts_nothing() -> None:
    w = Worker()
    for i in range(8):
        w.feed(tx(f"t{i}", i, "100.00"))  # the 8th: daily_count's heads-up (8 of 10) and inr_day's (800.00)
    before = decode_day(*next(iter(w.days.items())))
    assert w.feed(tx("t7", 7, "100.00")) is Outcome.RESEND
    assert [(a.rule, a.tier, resent) for a, resent in w.sent[-2:]] == [("daily_count", "warn", True), ("inr_day", "warn", True)]
    first = {(a.rule, a.tier): a for a, resent in w.sent if not resent}
    for again, _ in w.sent[-2:]:
        assert again == first[(again.rule, again.tier)]
    after = decode_day(*next(iter(w.days.items())))
    assert (after.count, after.rules["inr_day"].value) == (before.count, before.rules["inr_day"].value) == (8, Decimal("800.00"))


def test_a_rule_changed_mid_day_applies_from_the_next_record_and_keeps_what_was_counted() -> None:
    w = Worker()
    w.feed(tx("a", 0, "100.00"))
    w.feed(tx("b", 1, "100.00"))
    lowered = parse_rules('rules: [{name: inr_day, measure: amount, limit: "250", filter: {currency: INR}}]', "x")
    w.feed(tx("c", 2, "30.00"), lowered)  # 230.00 >= 80 % of 250
    w.feed(tx("d", 3, "30.00"), lowered)  # 260.00 > 250
    w.feed(tx("e", 4, "1.00"))  # back to 1000: both tiers fired today already
    assert [f for f in w.fired() if f[0] == "inr_day"] == [("inr_day", "warn", "c"), ("inr_day", "alert", "d")]
    over = [a for a, _ in w.sent if a.tier == "alert"][0]
    assert (over.limit, over.value) == (Decimal(250), Decimal("260.00"))


def sent_records(docs: list[dict[str, Any]]) -> list[SentRecord]:
    return [SentRecord(seq=i, key=d["user_id"], value=json.dumps(d), partition=0, offset=i, produced_at=NOW)
            for i, d in enumerate(docs)]


def test_the_oracle_expects_exactly_what_the_worker_sends() -> None:
    docs = []
    for i in range(40):  # amounts that add up across the limit, several currencies, P2P and not, a duplicate
        docs.append(tx(f"t{i}", i, amount=f"{(i * 37) % 90 * 3 + 0.25:.2f}", currency=("INR", "INR", "USD")[i % 3],
                       user=("u1", "vip")[i % 2], merchant=None if i % 4 == 0 else "m", category=("p2p", "movie_tickets", "food")[i % 3]))
        if i == 20:
            docs.append(docs[12])
    w = Worker()
    for doc in docs:
        w.feed(doc)
    got = sorted((a for a, resent in w.sent if not resent), key=lambda a: a.alert_id)
    expected = expected_outcome(sent_records(docs), SETTINGS, NOW, {}, RULES).alerts
    assert {(a.rule, a.tier) for a in expected} >= {("inr_day", "alert"), ("p2p_day", "alert"), ("daily_count", "warn")}
    assert [AlertFacts.model_validate(a.model_dump()) for a in got] == expected


WINDOWS = parse_rules("""
rules:
  - {name: p2p_24h, limit: 3, window: from_first_24h, filter: {p2p_only: true}, tiers: [{name: alert}]}
  - {name: inr_rolling, measure: amount, limit: "1000", window: rolling_24h, filter: {currency: INR}}
""", "windows")


def at(day: int, hour: int, minute: int = 0, amount: str = "100.00", tid: str = "", p2p: bool = True) -> dict[str, Any]:
    doc = tx(tid or f"d{day}h{hour}m{minute}", 0, amount, merchant=None if p2p else "m")
    doc["occurred_at"] = f"2026-03-{day:02d}T{hour:02d}:{minute:02d}:00+05:30"
    return doc


def test_from_first_24h_counts_24_hours_from_the_first_payment_across_midnight() -> None:
    w = Worker()
    for doc in (at(10, 20), at(11, 10), at(11, 19, 59), at(11, 20, 0, tid="next-window"), at(11, 21), at(11, 22)):
        w.feed(doc, WINDOWS)  # 3 in [10th 20:00, 11th 20:00), then a new window opens at 20:00
    assert [f for f in w.fired() if f[0] == "p2p_24h"] == []
    w.feed(at(12, 8), WINDOWS)  # the 4th of the second window
    w.feed(at(10, 21, tid="late-in-first"), WINDOWS)  # out of order: the 4th of the first window
    assert [f for f in w.fired() if f[0] == "p2p_24h"] == [("p2p_24h", "alert", "d12h8m0"), ("p2p_24h", "alert", "late-in-first")]
    second = [a for a, _ in w.sent if a.crossing_transaction_id == "d12h8m0"][0]
    assert (second.window_start.isoformat(), second.window_end.isoformat(), second.count) == (
        "2026-03-11T20:00:00+05:30", "2026-03-12T20:00:00+05:30", 4)


def test_rolling_24h_looks_back_24_hours_from_each_payment_and_fires_once_in_24_hours() -> None:
    w = Worker()
    w.feed(at(10, 10, amount="600.00", p2p=False), WINDOWS)
    w.feed(at(11, 9, amount="300.00", p2p=False), WINDOWS)  # 900 in the 24 h before: the heads-up
    w.feed(at(11, 10, 1, amount="200.00", p2p=False), WINDOWS)  # the 600 left the window: 500
    w.feed(at(11, 11, amount="600.00", p2p=False), WINDOWS)  # 1100 over
    w.feed(at(11, 23, amount="900.00", p2p=False), WINDOWS)  # over again, within 24 h: no second alert
    w.feed(at(12, 12, amount="1200.00", p2p=False), WINDOWS)  # over, 25 h later: a new heads-up and alert
    assert [f for f in w.fired() if f[0] == "inr_rolling"] == [
        ("inr_rolling", "warn", "d11h9m0"), ("inr_rolling", "alert", "d11h11m0"),
        ("inr_rolling", "warn", "d12h12m0"), ("inr_rolling", "alert", "d12h12m0")]


def test_the_oracle_expects_exactly_what_the_worker_sends_for_24_hour_windows() -> None:
    docs = []
    for i in range(120):  # three days, out of order by up to 5 hours, P2P and not, amounts near the limits
        hour = (i * 7) % 72 - (5 if i % 9 == 0 else 0)
        doc = at(10 + max(hour, 0) // 24, max(hour, 0) % 24, (i * 13) % 60, amount=f"{(i * 53) % 400 + 0.5:.2f}",
                 tid=f"t{i}", p2p=i % 3 != 0)
        doc["user_id"] = ("u1", "u2")[i % 2]
        docs.append(doc)
        if i % 17 == 0:
            docs.append(dict(doc))  # a duplicate
    w = Worker()
    for doc in docs:
        w.feed(doc, WINDOWS)
    got = sorted((a for a, resent in w.sent if not resent), key=lambda a: a.alert_id)
    expected = expected_outcome(sent_records(docs), SETTINGS, NOW, {}, WINDOWS).alerts
    assert {(a.rule, a.tier) for a in expected} >= {("p2p_24h", "alert"), ("inr_rolling", "alert"), ("inr_rolling", "warn")}
    assert [AlertFacts.model_validate(a.model_dump()) for a in got] == expected


def test_a_rule_whose_measure_or_window_changes_counts_again_and_the_oracle_agrees() -> None:
    count_day = parse_rules("rules: [{name: r, limit: 2, filter: {currency: INR}}]", "a")
    amount_day = parse_rules('rules: [{name: r, measure: amount, limit: "150", filter: {currency: INR}}]', "b")
    amount_rolling = parse_rules('rules: [{name: r, measure: amount, limit: "150", window: rolling_24h, '
                                 'filter: {currency: INR}}]', "c")
    plan = [(count_day, at(10, 9, amount="100.00")), (count_day, at(10, 10, amount="100.00")),
            (amount_day, at(10, 11, amount="100.00")),  # a new measure: 100, not the 300 of the day
            (amount_day, at(10, 12, amount="60.00")),  # 160: over, the alert (today's heads-up fired already)
            (amount_rolling, at(10, 13, amount="100.00")),  # a new window: 100
            (amount_rolling, at(10, 14, amount="100.00"))]  # 200 in the 24 h: its own alert
    w = Worker()
    changes = {}
    for seq, (rules, doc) in enumerate(plan):
        w.feed(doc, rules)
        changes[seq] = rules
    assert [(rule, tier, tid) for rule, tier, tid in w.fired() if rule == "r"] == [
        ("r", "warn", "d10h10m0"), ("r", "alert", "d10h12m0"), ("r", "warn", "d10h14m0"), ("r", "alert", "d10h14m0")]
    got = sorted((a for a, _ in w.sent), key=lambda a: a.alert_id)
    expected = expected_outcome(sent_records([doc for _, doc in plan]), SETTINGS, NOW, {}, (), changes).alerts
    assert [AlertFacts.model_validate(a.model_dump()) for a in got] == expected
    # the heads-up fired under the count measure, sent again after the change, is the one sent first
    w.feed(plan[1][1], amount_rolling)
    [(again, resent)] = [(a, resent) for a, resent in w.sent[len(got):] if a.rule == "r"]
    assert resent and again == [a for a, _ in w.sent if a.alert_id == again.alert_id][0]
    assert (again.measure, again.value, again.limit) == ("count", 2, 2)


def test_a_shadow_rule_alerts_on_the_side_and_promoted_does_not_send_again_what_fired() -> None:
    shadow = [r.model_copy(update={"shadow": True}) if r.name == "inr_day" else r for r in RULES]
    w = Worker()
    w.feed(tx("a", 0, "800.00"), shadow)  # the heads-up, in shadow
    w.feed(tx("a", 0, "800.00"), shadow)  # a replay of it: sent again, to the shadow topic still
    assert [(a.rule, a.tier) for a in w.shadow] == [("inr_day", "warn"), ("inr_day", "warn")]
    assert [f for f in w.fired() if f[0] == "inr_day"] == []
    w.feed(tx("b", 1, "100.00"), RULES)  # promoted: the heads-up fired today, not sent again
    w.feed(tx("c", 2, "100.01"), RULES)  # over: live
    assert [f for f in w.fired() if f[0] == "inr_day"] == [("inr_day", "alert", "c")]
    assert len(w.shadow) == 2
