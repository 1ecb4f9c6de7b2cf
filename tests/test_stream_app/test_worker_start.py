"""A worker's start: its topics before faust starts, and an exit (for its supervisor) when it is
never ready.

The worker creates its tables' changelog topics before faust starts (`paylimit worker`).

Left to faust, they are created while its consumer joins the group; a group leader whose metadata
misses them assigns none of their partitions ("Ignoring missing topic"), and the worker never
becomes ready (once in a few fresh starts of the compose stack). Here: on the real broker, the
topics `paylimit worker` ensures before it starts faust are there, led, with faust's config.
"""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Callable

from confluent_kafka.admin import AdminClient, ConfigResource

from paylimit.kafka import ensure_topics
from paylimit.runtime.processes import free_port
from paylimit.settings import Settings
from stream_app.app import build_app, changelog_topics


def test_the_changelog_topics_exist_with_leaders_and_faust_config_before_the_worker_starts(
        make_settings: Callable[..., Settings]) -> None:
    s = make_settings(web_port=free_port())
    app = build_app(s)
    names = {t.topic for t in changelog_topics(app)}
    assert f"{s.app_id}-days-changelog" in names and s.topic_limits in names
    ensure_topics(s, extra=changelog_topics(app))
    admin = AdminClient(s.kafka_client_config())
    for name in names:
        md = admin.list_topics(name, timeout=10).topics[name]
        assert md.error is None and md.partitions and all(p.leader >= 0 for p in md.partitions.values())
    days = f"{s.app_id}-days-changelog"
    assert len(admin.list_topics(days, timeout=10).topics[days].partitions) == s.partitions
    config = admin.describe_configs([ConfigResource("topic", days)])[ConfigResource("topic", days)].result(timeout=10)
    assert config["cleanup.policy"].value == "compact"
    assert config["segment.ms"].value == str(int(s.changelog_segment.total_seconds() * 1000))


def test_a_worker_not_ready_by_its_deadline_exits_with_an_error(make_settings: Callable[..., Settings]) -> None:
    # a deadline no start can meet (faust's first assignment alone takes longer) stands in for a
    # worker that never becomes ready: it must exit non-zero (compose restarts only what exits)
    s = make_settings(web_port=free_port(), worker_ready_timeout=0.001)
    try:
        proc = subprocess.run([sys.executable, "-m", "paylimit", "worker"], env={**os.environ, **s.as_env()},
                              capture_output=True, text=True, timeout=180)
    except subprocess.TimeoutExpired as exc:  # still up
        raise AssertionError((exc.stdout or b"").decode()[-3000:] + (exc.stderr or b"").decode()[-3000:]) from None
    assert proc.returncode == 1, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "exiting for the supervisor to start the worker again" in proc.stdout + proc.stderr
