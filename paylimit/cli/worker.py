"""`paylimit worker`: run the faust stream worker (several may run; one consumer group)."""

from __future__ import annotations

import faust

from paylimit.cli.common import connected_settings
from paylimit.kafka import ensure_topics
from paylimit.runtime.processes import free_port


def worker() -> None:
    """Run the stream worker: validate, de-duplicate, count per local day, raise alerts."""
    from stream_app.app import build_app, changelog_topics

    s = connected_settings()
    if s.web_port == 0:
        s = s.model_copy(update={"web_port": free_port()})
    s.home.mkdir(parents=True, exist_ok=True)
    app = build_app(s)
    ensure_topics(s, extra=changelog_topics(app))
    # one plain line, never wrapped: scripts read the port from it
    print(f"paylimit worker {s.app_id} on {s.kafka_bootstrap_servers}; HTTP port {s.web_port}: "
          f"http://{s.web_host}:{s.web_port}/users/USER/usage", flush=True)
    faust.Worker(app, loglevel="INFO", quiet=True).execute_from_commandline()
