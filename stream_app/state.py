"""The `days` table's values and their one codec: `DayCount`, one user's local day as the worker
keeps it, and `Progress`, where a source partition's counting stands.

A day keeps, of its counted transactions:
  * the ids, in full and in arrival order, up to and including the crossing one (all of them while
    the day is under its limit): what the alert lists, and an exact de-duplication of everything
    that decides it. A limit is at most `paylimit.contracts.MAX_DAILY_LIMIT`, so these are at most 1,001 ids;
  * the count, exact;
  * after the crossing, the 8-byte BLAKE2b hashes of the last `WINDOW` counted ids, oldest first:
    a duplicate of one of them is recognised; one of an id counted earlier than that is counted
    again. A new id taken for one of the kept hashes has odds of at most WINDOW / 2**64 (about
    1 in 10**15 per transaction).
So a value is at most `VALUE_MAX` bytes whatever the day's count (the broker refuses a record over
1 MiB by default). A hot day is kept decoded between records (`stream_app.batch`): counting one
more transaction costs the same at the 100,000th as at the first.

The fields above are the default rule's (`daily_count`, whose `alert` tier is the crossing); the
day also holds, per rule, a `RuleDay`: what the rule counted that day (count, value, first seen)
and the tiers it fired, each with what its alert says. That is a few dozen bytes per rule: a
rule's alert other than `daily_count`'s lists no ids (see README, "Limit rules"). A 24 h window
rule also keeps its transactions' times (8 bytes each) and amounts, at most `MAX_ENTRIES` a day:
up to about 110 KB more per such rule, outside `VALUE_MAX`.

Encoded as JSON (format 3): {"v": 3, "z": zone, "p": source partition, "e": the day's end (epoch
s), "f": first seen at, "i": the ids kept in full, "n": count, "x": crossing id, "l": limit it
crossed, "t": late, "h": the hashes (base64), "r": {rule: RuleDay}}, without what the key or the
rest says: the user and date are the key's (`user|YYYY-MM-DD`), and a key is left out at its
default ("n" at len("i"), "x"/"l" null, "t" false, "h" empty), "f" without "+00:00" when in UTC, and
`daily_count`'s RuleDay while it is what the day implies (first in "r", nothing fired, the day's own
count and first seen). A typical day (two UUID ids, under its limit) is 166 bytes, not 343.
A value without "v" is format 1 (every counted id in "i", with "u" user and "d" date), "v": 2
every key written ("u", "d" and `daily_count`'s RuleDay too; none in "r" when no rule had counted):
both are decoded as the day they describe.
"""

from __future__ import annotations

import struct
from collections import deque
from decimal import Decimal
from hashlib import blake2b
from typing import Any, NamedTuple

import msgspec
import orjson

from paylimit.rules import DEFAULT_RULE

HASH_BYTES = 8
WINDOW = 20_000
#: a bound on an encoded value: 1,001 ids of 128 characters that JSON escapes to 6 bytes each
#: (771,771 bytes), the window in base64 (213,336) and the rest (a user id like those, a date...)
VALUE_MAX = 1_000_000
FORMAT = 3
UTC = "+00:00"


class Progress(NamedTuple):
    """A source partition's progress, stored with its counts: the next offset to count, and the
    partition's stream time (epoch seconds; None before its first valid record). Encoded as JSON:
    {"o": next offset, "t": stream time}."""

    next_offset: int
    stream_time: float | None

    def to_json(self) -> dict[str, Any]:
        return {"o": self.next_offset, "t": self.stream_time}

    @classmethod
    def from_json(cls, v: dict[str, Any]) -> "Progress":
        return cls(v["o"], v["t"])


def decode_progress(raw: bytes) -> Progress:
    return Progress.from_json(orjson.loads(raw))


class Fired(NamedTuple):
    """A tier that fired: its transaction, and the rule's count, value, limit (in force) and
    measure then; the window's first counted transaction's time, and for a 24 h window the
    window's start (epoch microseconds)."""

    crossing: str
    counted: int  # the rule's count then
    value: str  # a Decimal, as text
    limit: str
    late: bool
    measure: str  # the rule's then (a rule's measure may change later)
    start: int | None = None
    first: int | None = None
    shadow: bool = False  # fired by a shadow rule: its alert went to the shadow topic (and stays there)


#: a 24 h window rule keeps at most this many transactions' times per user and day; more are
#: merged into the latest (README, "Limit rules": counted as if made at the latest time)
MAX_ENTRIES = 5_000


class RuleDay:
    """What one rule counted of one user's day: {"n": count, "s": value, "f": first seen at,
    "m": measure, "w": window kind (absent: calendar_day), "x": {tier (and "@" window start, for 24 h
    windows): Fired}}; for a 24 h window
    rule also the counted transactions' times ("t": epoch microseconds, packed as 8-byte integers
    in base64), amounts ("a", amount rules) and the windows opened that day ("o", from_first_24h)."""

    __slots__ = ("count", "value", "first_seen_at", "measure", "fired", "times", "amounts", "opens", "window")

    def __init__(self, measure: str, count: int = 0, value: Decimal = Decimal(0), first_seen_at: str | None = None,
                 fired: dict[str, Fired] | None = None, times: list[int] | None = None,
                 amounts: list[str] | None = None, opens: list[int] | None = None,
                 window: str = "calendar_day") -> None:
        self.measure, self.count, self.value, self.first_seen_at = measure, count, value, first_seen_at
        self.window = window  # the rule's window kind when it counted this
        self.fired: dict[str, Fired] = fired if fired is not None else {}
        self.times: list[int] = times if times is not None else []
        self.amounts: list[str] = amounts if amounts is not None else []
        self.opens: list[int] = opens if opens is not None else []

    def remember(self, at: int, amount: Decimal) -> None:
        """Keep one counted transaction's time (and amount) for the 24 h windows."""
        if len(self.times) < MAX_ENTRIES:
            self.times.append(at)
            self.amounts.append(str(amount))
        else:
            self.times[-1] = max(self.times[-1], at)
            self.amounts[-1] = str(Decimal(self.amounts[-1]) + amount)

    def entries(self) -> list[tuple[int, Decimal]]:
        return [(at, Decimal(a)) for at, a in zip(self.times, self.amounts)]

    def stored(self) -> "RuleValue":
        if not self.times:
            return RuleValue(self.count, self.value, self.first_seen_at, self.measure, self.fired, w=self.window)
        return RuleValue(self.count, self.value, self.first_seen_at, self.measure, self.fired,
                         struct.pack(f"<{len(self.times)}q", *self.times),
                         ",".join(self.amounts) if self.measure == "amount" else None, self.opens, self.window)

    def implied_by(self, day: "DayCount") -> bool:
        """Is this `daily_count`'s RuleDay as `day` implies it (format 3 leaves it out)?"""
        return (not self.fired and not self.times and not self.opens and self.measure == "count"
                and self.window == "calendar_day" and self.count == day.count and self.value == day.count
                and self.value.as_tuple().exponent == 0 and self.first_seen_at == day.first_seen_at)

    @classmethod
    def of(cls, v: "RuleValue") -> "RuleDay":
        times = list(struct.unpack(f"<{len(v.t) // 8}q", v.t)) if v.t else []
        amounts = v.a.split(",") if v.a else ["1"] * len(times)
        return cls(v.m, v.n, v.s, v.f, v.x, times, amounts, v.o, v.w)


class RuleValue(msgspec.Struct, omit_defaults=True, gc=False):
    """A `RuleDay` as stored (the keys of its docstring; "t" as base64, by msgspec's codec)."""

    n: int
    s: Decimal
    f: str | None
    m: str
    x: dict[str, Fired] = msgspec.field(default_factory=dict)
    t: bytes = b""
    a: str | None = None
    o: list[int] = msgspec.field(default_factory=list)
    w: str = "calendar_day"


#: the lengths of a date and time as `datetime.isoformat()` writes it, without an offset (and
#: without microseconds): no isoformat() with an offset has one of them
NAIVE = (26, 19)


def short_utc(at: str) -> str:
    """An isoformat() time in UTC without its "+00:00" (format 3's "f")."""
    return at[:-len(UTC)] if at.endswith(UTC) and len(at) - len(UTC) in NAIVE else at


def id_hash(transaction_id: str) -> bytes:
    return blake2b(transaction_id.encode(), digest_size=HASH_BYTES).digest()


class DayCount:
    """One user's counted transactions of one local day. Counting changes it in place (a copy per
    record was what made a hot user's cost grow with their count)."""

    __slots__ = ("user_id", "date", "zone", "partition", "end", "first_seen_at", "count", "head",
                 "recent", "_recent_set", "crossing", "limit", "late", "rules")

    def __init__(self, user_id: str, date: str, zone: str, partition: int, end: float, first_seen_at: str,
                 count: int = 0, head: list[str] | None = None, recent: deque[bytes] | None = None,
                 crossing: str | None = None, limit: int | None = None, late: bool = False,
                 rules: dict[str, RuleDay] | None = None) -> None:
        self.user_id, self.date, self.zone, self.partition = user_id, date, zone, partition
        self.end = end  # the day's end, epoch seconds (for lateness and cleanup)
        self.first_seen_at = first_seen_at
        self.count = count
        self.head: list[str] = head if head is not None else []  # full ids, up to the crossing one
        self.recent: deque[bytes] = recent if recent is not None else deque()  # hashes after it
        self._recent_set = set(self.recent) if self.recent else set()
        self.crossing = crossing
        self.limit = limit  # the limit in force when the day crossed it
        self.late = late
        self.rules: dict[str, RuleDay] = rules if rules is not None else {}

    def crossings(self, transaction_id: str) -> list[tuple[str, str]]:
        """The (rule, tier) pairs this transaction fired (a replay of it sends their alerts again)."""
        fired = [(rule, tier) for rule, day in self.rules.items() for tier, f in day.fired.items()
                 if f.crossing == transaction_id]
        return fired + ([("daily_count", "alert")] if transaction_id == self.crossing else [])

    def holds(self, transaction_id: str) -> bool:
        """Is this id counted already (as far as the day keeps its ids; see the module docstring)?"""
        return transaction_id in self.head or (self.crossing is not None and id_hash(transaction_id) in self._recent_set)

    def add(self, transaction_id: str, limit: int, late: bool) -> bool:
        """Count one more transaction; True when it takes the day over `limit` (it is the crossing)."""
        self.count += 1
        if self.crossing is None:
            self.head.append(transaction_id)
            if self.count > limit:
                self.crossing, self.limit, self.late = transaction_id, limit, late
                return True
            return False
        self._remember(id_hash(transaction_id))
        return False

    def _remember(self, digest: bytes) -> None:
        if len(self.recent) >= WINDOW:
            self._recent_set.discard(self.recent.popleft())
        self.recent.append(digest)
        self._recent_set.add(digest)

    def stored(self) -> "DayValue":
        rules = self.rules
        if rules and next(iter(rules)) == DEFAULT_RULE and rules[DEFAULT_RULE].implied_by(self):
            rules = {name: rule for name, rule in rules.items() if name != DEFAULT_RULE}
        return DayValue(v=FORMAT, z=self.zone, p=self.partition, e=self.end, f=short_utc(self.first_seen_at),
                        i=self.head, n=0 if self.count == len(self.head) else self.count, x=self.crossing,
                        l=self.limit, t=self.late, h=b"".join(self.recent),
                        r={name: rule.stored() for name, rule in rules.items()})

    @classmethod
    def of(cls, v: "DayValue", key: str) -> "DayCount":
        if v.v == 1:  # the format before: every counted id, in full
            ids, crossing = v.i, v.x
            cut = ids.index(crossing) + 1 if crossing is not None else len(ids)
            day = cls(v.u, v.d, v.z, v.p, v.e, v.f, len(ids), ids[:cut], None, crossing, v.l, v.t)
            for tid in ids[cut:][-WINDOW:]:
                day._remember(id_hash(tid))
            return day
        raw = v.h
        recent = deque(raw[i:i + HASH_BYTES] for i in range(0, len(raw), HASH_BYTES)) if raw else None
        rules = {name: RuleDay.of(rule) for name, rule in v.r.items()}
        count = v.n or len(v.i)
        if v.v == 2:
            return cls(v.u, v.d, v.z, v.p, v.e, v.f, count, v.i, recent, v.x, v.l, v.t, rules)
        user, _, date = key.rpartition("|")
        first_seen = v.f + UTC if len(v.f) in NAIVE else v.f
        if DEFAULT_RULE not in rules:
            rules = {DEFAULT_RULE: RuleDay("count", count, Decimal(count), first_seen), **rules}
        return cls(user, date, v.z, v.p, v.e, first_seen, count, v.i, recent, v.x, v.l, v.t, rules)


class DayValue(msgspec.Struct, kw_only=True, omit_defaults=True, gc=False):
    """A `DayCount` as stored: the JSON object of the module docstring ("h" as base64), of any
    format: one of format 1 has no "v", "n", "h" or "r"; "u" and "d" are not written since format 3."""

    v: int = 1
    z: str
    p: int
    e: float
    f: str
    i: list[str]
    n: int = 0  # 0: len(i) (a day counts one transaction at least)
    x: str | None = None
    l: int | None = None  # noqa: E741 (the stored key)
    t: bool = False
    h: bytes = b""
    r: dict[str, RuleValue] = msgspec.field(default_factory=dict)
    u: str = ""
    d: str = ""


_DAY = msgspec.json.Decoder(DayValue)
_ENCODER = msgspec.json.Encoder()
_BUFFER = bytearray()


def encode_day(day: DayCount) -> bytes:
    """A day's stored bytes, in an exact-size copy: a value kept in memory should cost its size,
    not the encoder's output buffer (the worker's event loop is its one caller)."""
    _ENCODER.encode_into(day.stored(), _BUFFER)
    return bytes(_BUFFER)


class Placed(msgspec.Struct, gc=False):
    """Where a day value stands: its source partition and end (epoch s), the rest not decoded."""

    p: int
    e: float


day_placed = msgspec.json.Decoder(Placed).decode


def decode_day(key: str, raw: bytes) -> DayCount:
    """The day stored as `raw` under `key` (a day's user and date are its key's)."""
    return DayCount.of(_DAY.decode(raw), key)


def day_count(value: dict[str, Any]) -> int:
    """The count of a decoded (JSON) day value, of any format, without rebuilding the day."""
    return value.get("n") or len(value["i"])

