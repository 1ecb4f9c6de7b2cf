"""`Processor`: the worker's assigned transactions partitions, counted exactly.

Progress is state: the `days` table holds, per source partition, a `Progress` (the next offset to
count and the stream time), written with the counts, last, in the same changelog partition. The
processor reads each assigned partition from there with its own consumer (`stream_app.reader`),
after the table's recovery, and again after any rebalance or broker error; a record below it was
already counted and is skipped. So counting never depends on the consumer group's offset
bookkeeping (faust's has known bugs: gaps and duplicates in its ack list, a jump ahead after an
assignment); the group's offset only says where to start when the state has no progress.

The group's own fetching is paused (`Group.pause`), and the few records it delivers before that are
dropped (`stream_app.app`): records arrive by this one path. The counting holds a lock that the
commit timer and a revocation (`revoke`) wait for. The writes that follow a batch, and their order,
are `stream_app.checkpoint`'s.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from datetime import datetime, timezone
from typing import Any, Callable, Mapping, Sequence

from paylimit.errors import InfraError
from paylimit.rules import Rule
from paylimit.settings import Settings
from stream_app.alerts import fired_in_shadow
from stream_app.batch import StagedWrites, Days, is_progress_key, progress_key
from stream_app.changelog import Changelog
from stream_app.checkpoint import Checkpoint, Group
from stream_app.counting import expired, expiry_cutoff
from stream_app.handling import Outputs, handle
from stream_app.limits import limit_for
from stream_app.metrics import Metrics
from stream_app.writer import Writer
from stream_app.reader import Record, TransactionReader
from stream_app.rulebook import RuleBook
from stream_app.state import DayCount, Progress, day_placed

log = logging.getLogger("paylimit.worker")

DAY = 86400.0


async def off_loop(fn: Callable[..., Any], *args: Any) -> Any:
    """Run a blocking client call in the loop's thread pool."""
    return await asyncio.get_running_loop().run_in_executor(None, fn, *args)


async def settled(read: asyncio.Future | None) -> None:
    """Wait for a read under way to end, whatever it brings (it is dropped)."""
    if read is not None:
        await asyncio.gather(read, return_exceptions=True)


class Processor:
    """The worker's core: `run` reads and counts the assigned partitions (`count`); `revoke` and
    `commit` write the state (`Checkpoint`)."""

    def __init__(self, settings: Settings, group: Group, days: Days, changelog: Changelog,
                 limits: Mapping[bytes, bytes]) -> None:
        self.settings, self.group, self.days, self.limits = settings, group, days, limits
        self.reader = TransactionReader(settings)
        self.metrics = Metrics()
        self.lock = asyncio.Lock()  # the counting, the commit timer and a revocation take turns on the state
        self.checkpoint = Checkpoint(settings, Writer(settings), days, changelog, self.metrics, group, self.lock)
        self.cleaned_through: dict[int, float] = {}  # partition -> stream time of its last cleanup
        # the earliest date of the days held (None: not known, as after a restore): a cleanup whose
        # cutoff is before it has nothing to look at (a catch-up's days are all recent)
        self.oldest: str | None = None
        self.rulebook = RuleBook(settings)  # the limit rules, refreshed before each batch

    async def next_offset(self, partition: int) -> int:
        """The next offset of a partition to count: from the state, else where the group starts."""
        progress = self.days.progress(partition)
        return progress.next_offset if progress is not None else await off_loop(self.reader.start_offset, partition)

    def fetch(self) -> tuple[list[Record], list[Rule]]:
        """The next batch and the rules that judge it (blocking: run off the loop). The rules' end
        is read after the batch arrived, so a rule written (acknowledged) before a transaction was
        produced judges that transaction."""
        records = self.reader.poll(self.settings.batch_max, self.settings.batch_window)
        return records, (self.rulebook.refresh() if records else self.rulebook.rules)

    async def run(self) -> None:
        """The worker's main path: its assigned partitions, read from its state's next offsets. The
        next batch is read while one is counted (the reader waits in librdkafka, not on the
        counting); read from an assignment that has changed since, it is dropped."""
        generation: int | None = None  # the assignment the reader follows
        fetching: asyncio.Future | None = None  # the next batch being read, of `generation`
        while not self.group.ready():
            await asyncio.sleep(0.05)
        # faust, pydantic and the rest of the start-up leave about a million objects that live as
        # long as the process; frozen, the cyclic GC's full collections skip them (~100 ms each)
        gc.freeze()
        loop = asyncio.get_running_loop()
        while not self.group.stopping():
            try:
                if not self.group.ready() or generation != self.group.generation():
                    await settled(fetching)  # never assign the reader under a read
                    fetching = None
                    if not self.group.ready():
                        generation = None
                        await asyncio.sleep(0.05)
                        continue
                    generation = self.group.generation()
                    await off_loop(self.reader.assign, {p: await self.next_offset(p) for p in self.group.assigned()})
                    self.oldest = None  # a rebalance restored days
                self.group.pause(self.group.assigned())  # faust resumes them after a recovery; the reader reads them
                if fetching is None:
                    fetching = loop.run_in_executor(None, self.fetch)
                records, rules = await fetching
                fetching = None
                self.metrics.resume("reading")
                if not self.group.ready() or generation != self.group.generation():
                    continue  # the partitions may have moved: read again from the state
                fetching = loop.run_in_executor(None, self.fetch)
                async with self.lock:
                    if not self.group.ready() or generation != self.group.generation():
                        continue
                    await self.count(records, rules)
            except InfraError as exc:  # the broker is away: read again from the state once it is back
                log.warning("%s; reading again in 1 s", exc)
                self.metrics.stall("reading", self.group.assigned(), str(exc))
                await settled(fetching)
                fetching, generation = None, None
                await asyncio.sleep(1.0)

    async def count(self, records: Sequence[Record], rules: Sequence[Rule] | None = None) -> None:
        """Count the records at or past their partition's next offset in the state (under `lock`,
        which the caller holds); one below it is already counted. `rules`: those in force when the
        records were read (`fetch`), else read now."""
        if rules is None:
            rules = await off_loop(self.rulebook.refresh) if records else self.rulebook.rules
        starts = {p: await self.next_offset(p) for p in {r.partition for r in records}}
        fresh = [r for r in records if r.offset >= starts[r.partition]]
        self.metrics.replayed += len(records) - len(fresh)
        await self.process(fresh, rules)

    async def process(self, records: Sequence[Record], rules: Sequence[Rule]) -> None:
        """Count records that are each the next of their partition (under `lock`, which the caller
        holds), then write their outputs and state (`Checkpoint.commit`)."""
        started = time.perf_counter()
        batch = StagedWrites(self.days)
        outputs = Outputs()
        now = datetime.now(timezone.utc)
        default = self.settings.daily_limit
        limit_of: Callable[[str], int] = lambda user_id: limit_for(self.limits, user_id, default)  # noqa: E731
        stream_times: dict[int, float | None] = {}  # partition -> its stream time, as this batch moves it
        next_offsets: dict[int, int] = {}
        for record in records:
            partition = record.partition
            if partition in stream_times:
                stream_time = stream_times[partition]
            else:
                mark = self.days.progress(partition)
                stream_time = stream_times[partition] = mark.stream_time if mark is not None else None
            handled = handle(record, batch.day, stream_time, limit_of, now, self.settings, rules)
            decision = handled.decision
            if handled.letter is not None:
                self.metrics.dead_letter(handled.letter.error)
            elif decision is not None:
                day = decision.alert_day
                shadow = sum(fired_in_shadow(day, *fired) for fired in decision.fired) if day is not None else 0
                self.metrics.outcome(decision.outcome, len(decision.fired), shadow)
                if decision.day is not None and handled.key is not None:
                    batch.set(partition, handled.key, decision.day)
                    if self.oldest is not None and decision.day.date < self.oldest:
                        self.oldest = decision.day.date
                if decision.stream_time is not None and decision.stream_time != stream_time:
                    stream_times[partition] = decision.stream_time
                    self._drop_expired_days(batch, partition, decision.stream_time)
            outputs.add(record, handled, now)
            next_offsets[partition] = record.offset + 1
        progress = {p: Progress(offset, stream_times[p]) for p, offset in next_offsets.items()}
        for partition, mark in progress.items():
            batch.set(partition, progress_key(partition), mark)
        await self.checkpoint.commit(batch, outputs, list(progress))
        if records:
            self.metrics.batch(len(records), time.perf_counter() - started)

    def _drop_expired_days(self, batch: StagedWrites, partition: int, stream_time: float) -> None:
        """Once per day of stream time per partition: forget days past twice the retention."""
        if stream_time < self.cleaned_through.get(partition, float("-inf")) + DAY:
            return
        self.cleaned_through[partition] = stream_time
        cutoff = expiry_cutoff(stream_time, self.settings.retention)
        if self.oldest is not None and self.oldest > cutoff:
            return
        oldest = "9999-12-31"
        for key, raw in list(self.days.values.items()):
            if is_progress_key(key):
                continue
            date = key[-10:]  # day keys end with their date
            if date <= cutoff:
                placed = day_placed(raw)  # a hot day's bytes may be behind it: its partition and end are not
                if placed.p == partition and expired(placed.e, stream_time, self.settings.retention):
                    batch.set(partition, key, None)
                    continue
            oldest = min(oldest, date)
        staged = (value.date for _, value in batch.staged.values() if isinstance(value, DayCount))
        self.oldest = min(oldest, *staged)  # this batch's days are not in the table yet

    async def revoke(self) -> None:
        """Partitions leave this worker (a rebalance, or the worker stops) only after the batch
        being counted, with its state in the changelog that their next owner restores."""
        async with self.lock:
            await self.checkpoint.flush()
            self.days.live.clear()  # in the store, encoded; a partition that comes back is restored anew

    async def commit(self) -> None:
        """Every commit interval: the state to the changelog, then the group's offsets from it."""
        if self.group.rebalancing():
            return  # the revocation writes the state
        await self.checkpoint.commit()
