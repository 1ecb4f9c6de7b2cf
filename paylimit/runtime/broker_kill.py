"""`paylimit demo --kill-broker-at`: a broker of the local cluster killed mid-run and started again."""

from __future__ import annotations

import threading
import time
from typing import Callable

from confluent_kafka import KafkaException

from paylimit.errors import InfraError
from paylimit.kafka import ClusterWatch
from paylimit.runtime import local
from paylimit.settings import Settings


class BrokerKill:
    """`--kill-broker-at`: kill -9 the local broker leading the most transactions partitions `at`
    seconds into the run, and start it again `down_for` seconds later, in a thread of its own (a
    restart waits until the cluster lists the broker again)."""

    def __init__(self, base: Settings, s: Settings, at: float, announce: Callable[[str], None],
                 down_for: float = 20.0) -> None:
        self.base, self.s, self.at, self.announce, self.down_for = base, s, at, announce, down_for
        self.finished = threading.Event()  # the demo is over: a kill not yet done is not done
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        began = time.monotonic()
        if self.finished.wait(self.at):
            return
        try:
            victim = ClusterWatch(self.s).busiest(self.s.topic_transactions)
            local.stop_broker(self.base, victim)
            self.announce(f"{time.monotonic() - began:.0f} s: Kafka broker {victim} killed (kill -9), "
                          f"the leader of the most {self.s.topic_transactions} partitions")
            time.sleep(self.down_for)
            local.start_broker(self.base, victim)
            self.announce(f"{time.monotonic() - began:.0f} s: Kafka broker {victim} started again "
                          f"and back in the cluster")
        except (InfraError, KafkaException) as exc:
            self.announce(f"--kill-broker-at: {exc}")

    def wait(self) -> None:
        """Until a broker killed is running again."""
        self.finished.set()
        self.thread.join()
