"""`paylimit dashboard`: the live dashboard in the browser (usage, alerts, throughput, lag)."""

from __future__ import annotations

from paylimit.cli.common import connected_settings


def dashboard() -> None:
    """Serve the live dashboard on PAYLIMIT_WEB_HOST:PAYLIMIT_DASHBOARD_PORT; prints its URL."""
    from dashboard.server import serve

    s = connected_settings()
    # one plain line, never wrapped: scripts read the URL from it
    serve(s, announce=lambda url: print(f"paylimit dashboard {s.app_id}: {url} (workers {s.worker_urls})",
                                        flush=True))
