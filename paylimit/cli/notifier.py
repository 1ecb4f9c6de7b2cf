"""`paylimit notifier`: run the notifier service until SIGINT/SIGTERM."""

from __future__ import annotations

import logging
import signal
from types import FrameType

from paylimit.cli.common import connected_settings, exit_after_grace
from paylimit.kafka import ensure_topics


def notifier() -> None:
    """Deliver every alert exactly once into the shared record in Redis (and to the webhook, if set)."""
    from paylimit.notification_record import check_login
    from notifier.service import Notifier

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    s = connected_settings()
    ensure_topics(s)
    check_login(s)
    service = Notifier(s)

    def _stop(signum: int, frame: FrameType | None) -> None:
        exit_after_grace("the notifier")
        service.stop()

    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    print(f"paylimit notifier {s.notifier_group_id} on {s.kafka_bootstrap_servers}; log {s.notifications_log}",
          flush=True)
    service.run()
