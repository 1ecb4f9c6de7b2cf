"""`paylimit dashboard`: the live dashboard in the browser (usage, alerts, throughput, lag)."""

from __future__ import annotations

from paylimit.cli.common import connected_settings, settings
from paylimit.cli.logs import configure_logging, start_line


def dashboard() -> None:
    """Serve the live dashboard on PAYLIMIT_WEB_HOST:PAYLIMIT_DASHBOARD_PORT; prints its URL."""
    from dashboard.server import serve

    configure_logging(settings())
    s = connected_settings()
    # one plain line, never wrapped: scripts read the URL from it
    serve(s, announce=lambda url: start_line(s, f"paylimit dashboard {s.app_id}: {url} (workers {s.worker_urls})"))
