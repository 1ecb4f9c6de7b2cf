"""`paylimit worker`: run the faust stream worker (several may run; one consumer group)."""

from __future__ import annotations

import faust

from paylimit.cli.common import connected_settings, exit_after_grace, settings
from paylimit.cli.logs import configure_logging, start_line
from paylimit.kafka import ensure_topics
from paylimit.runtime.processes import free_port


def worker() -> None:
    """Run the stream worker: validate, de-duplicate, count per local day, raise alerts."""
    from stream_app.app import build_app, changelog_topics

    json_logs = settings().log_format == "json"
    if json_logs:  # faust's own logging setup writes text: ours instead, from the start
        configure_logging(settings())
    s = connected_settings()
    if s.web_port == 0:
        s = s.model_copy(update={"web_port": free_port()})
    s = ensure_topics(s)  # the replication decided, for the changelog faust creates
    s.home.mkdir(parents=True, exist_ok=True)
    app = build_app(s)
    ensure_topics(s, extra=changelog_topics(app))
    # one plain line, never wrapped: scripts read the port from it
    start_line(s, f"paylimit worker {s.app_id} on {s.kafka_bootstrap_servers}; HTTP port {s.web_port}: "
                  f"http://{s.web_host}:{s.web_port}/users/USER/usage")
    worker = _Worker(app, loglevel="INFO", quiet=True, override_logging=not json_logs)
    if json_logs:
        worker.spinner = None  # faust's logging setup turns its terminal spinner off; ours must too
    worker.execute_from_commandline()


class _Worker(faust.Worker):
    """faust's worker, which stops within STOP_GRACE of SIGTERM/SIGINT: with the broker gone, its
    clean stop waits for the last state write and faust's consumer thread (60 s and more)."""

    def _on_sigterm(self) -> None:
        exit_after_grace("the worker")
        super()._on_sigterm()

    def _on_sigint(self) -> None:
        exit_after_grace("the worker")
        super()._on_sigint()
