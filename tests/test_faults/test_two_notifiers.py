"""Two notifiers with homes of their own (as on two machines), one killed -9 twenty times.

Both POST to one real webhook and record into the one shared record. Some kills come the moment
the victim's count in the record grows (the alert is recorded; its export line and its offset
commit are not yet done), the others at seeded random moments (mid-POST, mid-reservation, idle).
Afterwards every expected alert is in the record exactly once, `paylimit verify` is clean from
either home, the per-notifier counts match what each recorded, and the notifier that was never
killed reports in its own stats exactly what the record says it recorded.
"""

from __future__ import annotations

import ast
import random
import re
import time
from datetime import timedelta
from pathlib import Path
from typing import Callable

import pytest

from notifier.log import read_notifications
from paylimit.notification_record import notifier_counts, notifier_name, read_record, recorders, redis_client
from paylimit.runtime.pipeline import Pipeline
from paylimit.settings import Settings
from tests.test_faults.helpers import assert_exact, kill_and_check, simulate_in_background, wait_for
from tests.test_notifier.webhook_server import Answer, WebhookServer, status

pytestmark = [pytest.mark.faults, pytest.mark.integration]

KILLS = 20


def test_two_notifiers_one_killed_20_times_record_each_alert_once(
        make_settings: Callable[..., Settings], tmp_path: Path) -> None:
    rng = random.Random(22)
    # a short POST delay widens the window between a reservation and its record
    with WebhookServer(Answer(status(200, reason="OK").raw, delay=0.02)) as hook:
        # a kill after a reservation leaves it held until its lease ends: keep the lease short
        settings = make_settings(notifier_lease=timedelta(seconds=3), webhook_url=hook.url(), webhook_timeout=1.0)
        pipeline = Pipeline(settings)
        pipeline.start()
        other = pipeline.add_notifier()
        victim = pipeline.notifier
        assert victim is not None and other.settings.home != settings.home
        r = redis_client(settings)
        name = notifier_name(settings)

        def recorded_by_victim() -> int:
            return notifier_counts(r, settings).get(name, 0)

        background = simulate_in_background(settings, tmp_path / "run", "default", 22, "--rate", "70")
        on_record = 0
        try:
            for number in range(KILLS):
                if number % 3 == 0 and background.running():
                    seen = recorded_by_victim()
                    try:
                        wait_for(lambda: recorded_by_victim() > seen, 30, "a record by the victim", step=0.002)
                        on_record += 1
                    except AssertionError:
                        pass  # its partitions are with the other notifier for now: a kill at this moment then
                else:
                    time.sleep(rng.uniform(0.05, 1.5))
                kill_and_check(victim)
                victim.restart()
            background.wait()
            pipeline.wait_drained(timeout=240)
            assert victim.restarts == KILLS and other.alive
            assert on_record >= 1, "no kill landed right after one of the victim's records"
            for s in (settings, other.settings):  # `paylimit verify` from either home
                result = assert_exact(s, background.out)
            record = read_record(r, settings)
            ids = [n.alert_id for n in record]
            assert len(ids) == len(set(ids)) == result["expected"]
            by = recorders(r, settings)
            counts = notifier_counts(r, settings)
            assert counts == {who: len(got) for who, got in by.items()}
            for s in (settings, other.settings):  # each notifier's log: exactly what it recorded, in order
                assert [n.alert_id for n in read_notifications(s.notifications_log)] == by.get(notifier_name(s), [])
            assert set(counts) <= {name, notifier_name(other.settings)} and sum(counts.values()) == len(ids)
            assert set(ids) <= {req.alert_id for req in hook.received()}  # the webhook: at least once
        finally:
            pipeline.stop()
        # the one never killed logged its stats when it stopped: they match what it recorded
        stats = re.findall(r"notifier stopped: (\{.*\})", other.log.read_text())
        assert stats, f"no stats line in {other.log}"
        assert ast.literal_eval(stats[-1])["delivered"] == counts.get(notifier_name(other.settings), 0)
