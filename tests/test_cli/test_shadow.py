"""`paylimit shadow report`'s rows, pure: per local day, shadow rule and tier, beside the live rules."""

from __future__ import annotations

from datetime import date

from paylimit.cli.shadow import shadow_rows
from tests.test_rules import alert

DAY, NEXT = date(2026, 3, 10), date(2026, 3, 11)


def test_shadow_users_beside_the_live_users_of_the_same_tier_and_day() -> None:
    shadow = [alert(user_id="ann", rule="big", tier="alert"), alert(user_id="bob", rule="big", tier="alert"),
              alert(user_id="ann", rule="big", tier="alert"),  # sent again after a crash: one user
              alert(user_id="cat", rule="big", tier="warn", schema_version=2, value=2, measure="count"),
              alert(user_id="dan", rule="big", tier="alert", local_date=NEXT)]
    live = [alert(user_id="bob"), alert(user_id="eve", rule="other", tier="alert"),
            alert(user_id="ann", tier="warn", schema_version=2, value=2, measure="count")]
    rows = [r.as_json() for r in shadow_rows(shadow, live)]
    assert rows == [
        {"local_date": "2026-03-10", "rule": "big", "tier": "alert", "shadow_users": ["ann", "bob"], "live_users": 2,
         "both": ["bob"], "shadow_only": ["ann"]},
        {"local_date": "2026-03-10", "rule": "big", "tier": "warn", "shadow_users": ["cat"], "live_users": 1,
         "both": [], "shadow_only": ["cat"]},
        {"local_date": "2026-03-11", "rule": "big", "tier": "alert", "shadow_users": ["dan"], "live_users": 0,
         "both": [], "shadow_only": ["dan"]}]
    assert [r.local_date for r in shadow_rows(shadow, live, since=NEXT)] == [NEXT]
