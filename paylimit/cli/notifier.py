"""`paylimit notifier`: run the notifier service (and its HTTP server) until SIGINT/SIGTERM."""

from __future__ import annotations

import signal
from types import FrameType

from paylimit.cli.common import connected_settings, exit_after_grace, settings
from paylimit.cli.logs import configure_logging, start_line
from paylimit.kafka import ensure_topics


def notifier() -> None:
    """Deliver every alert exactly once into the shared record in Redis (and to the webhook, if set)."""
    from paylimit.notification_record import check_login
    from notifier.server import serve
    from notifier.service import Notifier

    configure_logging(settings())
    s = connected_settings()
    ensure_topics(s)
    check_login(s)
    service = Notifier(s)
    server = serve(service, s)

    def _stop(signum: int, frame: FrameType | None) -> None:
        exit_after_grace("the notifier")
        service.stop()

    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    start_line(s, f"paylimit notifier {s.notifier_group_id} on {s.kafka_bootstrap_servers}; log "
                  f"{s.notifications_log}; HTTP port {server.server_address[1]}: "
                  f"http://{s.web_host}:{server.server_address[1]}/metrics")
    try:
        service.run()
    finally:
        server.shutdown()
