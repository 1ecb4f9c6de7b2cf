"""`Checkpoint`: the worker's writes to Kafka in their one order, `commit`.

  1. a counted batch's outputs (alerts, dead letters), acknowledged by the broker;
  2. then its state, in the table (so the table only ever holds state whose outputs Kafka has);
  3. every commit interval, the table's changed keys to the changelog (`stream_app.changelog`,
     progress records last), and the group's offsets read from that same state, in one
     synchronous step: nothing can count between the flush and the offsets it covers;
  4. once the broker has acknowledged all of that, the group's offsets.

Kafka refusing a write (a topic deleted, not authorized, a record over its size limit) is not a
crash, since a restart would fail at the same record: the batch's outputs are sent again every
`STALL_REPORT` seconds, loudly, until Kafka takes them; refused changelog records are marked again
and nothing is committed past them. `Group` is what the checkpoint needs of the consumer group
(faust's, behind `stream_app.app`).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Protocol, Sequence

from confluent_kafka import KafkaException

from paylimit.contracts import encode
from paylimit.errors import InfraError
from paylimit.settings import Settings
from stream_app.batch import StagedWrites, Days
from stream_app.changelog import Changelog
from stream_app.handling import Outputs
from stream_app.metrics import Metrics
from stream_app.writer import Writer

log = logging.getLogger("paylimit.worker")

#: while progress is stalled, a log line this often (seconds), and a refused write tried again as often
STALL_REPORT = 5.0


class Group(Protocol):
    """The consumer group as the worker's core sees it."""

    def ready(self) -> bool:
        """Partitions assigned and the table recovered: the state is the whole truth."""

    def assigned(self) -> list[int]:
        """The transactions partitions assigned to this worker."""

    def generation(self) -> int:
        """The assignment's generation: it changes at every rebalance."""

    def pause(self, partitions: Sequence[int]) -> None:
        """Stop the group's own fetching of these partitions (the worker reads them itself)."""

    def stopping(self) -> bool:
        """The worker stops."""

    def rebalancing(self) -> bool:
        """Partitions move between the group's members."""

    async def commit(self, offsets: dict[int, int]) -> bool:
        """Commit these next offsets of transactions partitions; True when done."""


class Checkpoint:
    def __init__(self, settings: Settings, writer: Writer, days: Days, changelog: Changelog, metrics: Metrics,
                 group: Group, lock: asyncio.Lock) -> None:
        self.settings, self.writer, self.days, self.changelog = settings, writer, days, changelog
        self.metrics, self.group, self.lock = metrics, group, lock
        self.refusals = 0  # writes Kafka refused so far (whoever waited for them: see `commit`)
        self.committed: dict[int, int] = {}  # partition -> the next offset last committed

    async def commit(self, batch: StagedWrites | None = None, outputs: Outputs | None = None,
                     partitions: Sequence[int] = ()) -> None:
        """With a batch (counted on `partitions`, under `lock`, which the caller holds): steps 1
        and 2. Without (every commit interval; takes `lock` itself): steps 3 and 4."""
        if batch is not None:
            if outputs:
                await self._send(outputs, partitions)  # 1
            batch.write(self.changelog)  # 2
            return
        # Only what moved: a commit with a stale generation (mid-rebalance) makes the member rejoin,
        # so committing unchanged offsets every tick would keep a rebalance going. Nothing else
        # commits these offsets (faust's acks are off for the transactions: `stream_app.app`).
        async with self.lock:  # between batches: a hot day is counted in place (stream_app.batch)
            before = self.refusals
            try:
                keys = self.changelog.flush(self.writer)  # 3
            except InfraError as exc:
                self.metrics.stall("the state", self.group.assigned(), f"{exc}; writing it again")
                return
            offsets = {}
            for partition in self.group.assigned():
                progress = self.days.progress(partition)
                if progress is not None and self.committed.get(partition) != progress.next_offset:
                    offsets[partition] = progress.next_offset
        if keys or offsets:
            await self.written("the state", list(keys.values()))  # never commit past what a restart restores
            # the one producer's refusals reach whichever wait comes first: any refusal since this
            # flush may be of these keys
            if self.refusals != before:
                self.changelog.again(keys)
                self.metrics.stall("the state", self.group.assigned(), "Kafka refused a write of the state's "
                                   "changelog or of the outputs; writing it again")
                return
        self.metrics.resume("the state")
        if offsets and await self.group.commit(offsets):  # 4
            self.committed.update(offsets)

    async def _send(self, outputs: Outputs, partitions: Sequence[int]) -> None:
        """Send a batch's outputs and wait until the broker has them, trying again every few
        seconds while Kafka refuses them (the partitions wait: nothing is skipped). InfraError when
        the worker stops or the partitions move meanwhile: the batch is given up and replayed."""
        while True:
            try:
                for alert, _ in outputs.alerts:
                    self.writer.send(self.settings.topic_alerts, alert.user_id.encode(), encode(alert))
                for alert in outputs.shadow:
                    self.writer.send(self.settings.topic_alerts_shadow, alert.user_id.encode(), encode(alert))
                for key, value in outputs.letters:
                    self.writer.send(self.settings.topic_dlq, key, value)
                refused = await self.written("alerts and dead letters", partitions)
                if refused is None:
                    break
                reason = refused
            except KafkaException as exc:  # refused before it was sent (a record over the client's size limit)
                reason = str(exc)
            self.metrics.stall("alerts and dead letters", partitions, f"Kafka refused them: {reason}; trying again")
            if self.group.stopping() or self.group.rebalancing():  # given up (see stream_app.changelog): replayed
                raise InfraError(f"alerts and dead letters not written: {reason}")
            await asyncio.sleep(STALL_REPORT)
        self.metrics.resume("alerts and dead letters")
        for alert, resent in outputs.alerts:
            log.info("alert %s user=%s date=%s count=%d%s", alert.alert_id, alert.user_id, alert.local_date,
                     alert.count, " (re-sent)" if resent else "")

    async def written(self, what: str, partitions: Sequence[int]) -> str | None:
        """Wait until Kafka has everything written so far (outputs and state), saying every few
        seconds that `what` waits (a broker away is waited for). None once it has; else what Kafka
        refused meanwhile (counted in `refusals`). Never raises InfraError: a refusal is a value."""
        waiting = asyncio.ensure_future(asyncio.get_running_loop().run_in_executor(None, self.writer.wait))
        while not (await asyncio.wait({waiting}, timeout=STALL_REPORT))[0]:
            self.metrics.stall(what, partitions, "waiting for Kafka to acknowledge the worker's writes")
        try:
            waiting.result()
        except InfraError as exc:
            self.refusals += 1
            return str(exc)
        return None

    async def flush(self) -> None:
        """Write the state to the changelog and wait for it (partitions leave this worker, or it
        stops); under `lock`, which the caller holds."""
        try:
            keys = self.changelog.flush(self.writer)
        except InfraError as exc:
            log.error("the state could not be written before partitions left: %s", exc)
            return
        refused = await self.written("the state", list(keys.values()))
        if refused is not None:  # their next owner restores the state written before, and replays
            log.error("the state could not be written before partitions left: %s", refused)
