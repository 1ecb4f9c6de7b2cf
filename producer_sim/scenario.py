"""Scenario files: what the simulator sends, as YAML parsed into pydantic models.

A scenario names a fixed virtual start instant in the past (events never depend on the wall
clock), a span of simulated time, user populations with their habits, and the edge cases to add:
bursts around a local instant (midnight), whole local days (DST days), late arrivals,
duplicates, out-of-order sends and malformed records. `load_scenario` takes a shipped scenario's
name or a path; anything that does not parse raises `ConfigError` naming the file and the field.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal
from importlib import resources
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, ValidationError, model_validator

from paylimit.contracts import CURRENCIES, TIMEZONES, Status
from paylimit.errors import ConfigError
from paylimit.rules import Rule

#: the dead-letter classes a scenario may ask for in `malformed`
MALFORMED_CLASSES = (
    "invalid_json", "missing_field", "invalid_amount", "unknown_currency", "unknown_timezone", "too_large",
    "too_far_in_future", "unsupported_schema_version", "too_late",
)


def _zone(name: str | None) -> str | None:
    if name is not None and name not in TIMEZONES:
        raise ValueError(f"unknown IANA time zone {name!r}")
    return name


def _currency(code: str) -> str:
    if code not in CURRENCIES:
        raise ValueError(f"unknown ISO 4217 currency {code!r}")
    return code


Zone = Annotated[str, AfterValidator(_zone)]
OptionalZone = Annotated[str | None, AfterValidator(_zone)]
Name = Annotated[str, Field(min_length=1, max_length=40, pattern=r"^[A-Za-z0-9_.-]+$")]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _no_zone() -> list[str | None]:
    return [None]


def _usual_statuses() -> dict[Status, float]:
    return {"succeeded": 0.9, "failed": 0.06, "declined": 0.04}


class Habits(_Strict):
    """How a group of users pays: zones (null = no `timezone` field), statuses, amounts."""

    timezones: list[OptionalZone] = Field(default_factory=_no_zone, min_length=1)
    statuses: dict[Status, float] = Field(default_factory=_usual_statuses)
    currencies: list[Annotated[str, AfterValidator(_currency)]] = Field(default_factory=lambda: ["INR"], min_length=1)
    amount: tuple[Decimal, Decimal] = (Decimal("10"), Decimal("5000"))
    categories: list[str] = Field(default_factory=lambda: ["food", "bills", "p2p", "movie_tickets", "groceries"])
    limit: int | None = Field(None, ge=0, description="per-user limit override for every user of the group")

    @model_validator(mode="after")
    def _sane(self) -> "Habits":
        if not self.statuses or any(w < 0 for w in self.statuses.values()) or sum(self.statuses.values()) <= 0:
            raise ValueError("statuses need non-negative weights with a positive sum")
        if not Decimal("0.01") <= self.amount[0] <= self.amount[1]:
            raise ValueError("amount must be [low, high] with 0.01 <= low <= high")
        return self


class Group(Habits):
    """Users `NAME-0000` .. `NAME-{users-1}` sharing habits (and an optional limit override)."""

    name: Name
    users: int = Field(ge=1)


class Population(Group):
    """`users` users, each making tx_per_day[0]..tx_per_day[1] transactions per local day of the span."""

    users: int = Field(ge=0)
    tx_per_day: tuple[int, int]

    @model_validator(mode="after")
    def _range(self) -> "Population":
        if not 0 <= self.tx_per_day[0] <= self.tx_per_day[1]:
            raise ValueError("tx_per_day must be [low, high] with 0 <= low <= high")
        return self


class Burst(Group):
    """Each of `users` users pays `before` times in the `seconds` before local wall-clock `at` and
    `after` times from `at` on; the first ones sit exactly at at-1s and at (23:59:59 / 00:00:00)."""

    timezone: Zone
    at: datetime  # naive: a local wall-clock time in `timezone`
    before: int = Field(ge=0)
    after: int = Field(ge=0)
    seconds: int = Field(60, ge=1)


class Day(Group):
    """Each of `users` users pays `count` times spread over one whole local day of `timezone`,
    from exactly local midnight to 23:59:59 (a DST day spans 23 or 25 hours)."""

    timezone: Zone
    date: date
    count: int = Field(ge=1)


class Late(Group):
    """Users paying `on_time` times on local `date`, then `late` more of that day's transactions
    arriving `arrive_after` past the day's end (right after an anchor transaction of the user dated
    then, so the partition's stream time is past the day for sure). `too_late` states the intent:
    the late ones are past the retention and must be dead-lettered."""

    timezone: Zone
    date: date
    on_time: int = Field(ge=0)
    late: int = Field(ge=1)
    arrive_after: timedelta
    too_late: bool = False


class Reorder(_Strict):
    """Fraction `rate` of records each sent up to `max_shift` positions later than their time."""

    rate: float = Field(ge=0, le=1)
    max_shift: int = Field(ge=1)


class Scenario(_Strict):
    name: Name
    description: str = ""
    start: AwareDatetime  # the fixed virtual start instant (in the past)
    days: float = Field(1, gt=0, le=60)
    populations: list[Population] = Field(default_factory=list)
    bursts: list[Burst] = Field(default_factory=list)
    whole_days: list[Day] = Field(default_factory=list)
    late: list[Late] = Field(default_factory=list)
    duplicates: Reorder | None = None  # re-send `rate` of the valid records, up to `max_shift` later
    out_of_order: Reorder | None = None
    malformed: dict[str, int] = Field(default_factory=dict)
    limits: dict[str, Annotated[int, Field(ge=0)]] = Field(default_factory=dict)  # explicit user -> limit
    rules: list[Rule] = Field(default_factory=list)  # limit rules besides daily_count, written before any event

    @model_validator(mode="after")
    def _checks(self) -> "Scenario":
        unknown = sorted(set(self.malformed) - set(MALFORMED_CLASSES))
        if unknown:
            raise ValueError(f"unknown malformed class {unknown[0]!r} (known: {', '.join(MALFORMED_CLASSES)})")
        names = [g.name for g in self.groups]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"group name {dupes[0]!r} is used twice (user ids are derived from it)")
        return self

    @property
    def groups(self) -> list[Group]:
        return [*self.populations, *self.bursts, *self.whole_days, *self.late]

    @property
    def span(self) -> timedelta:
        return timedelta(days=self.days)


def _field_path(loc: tuple[Any, ...]) -> str:
    return ".".join(str(p) for p in loc) or "(top level)"


def scenario_names() -> list[str]:
    """The scenarios shipped in the package."""
    root = resources.files("producer_sim.scenarios")
    return sorted(p.name.removesuffix(".yaml") for p in root.iterdir() if p.name.endswith(".yaml"))


def scenario_path(name_or_path: str) -> Path:
    """A shipped scenario's file by name, or the given file; ConfigError if neither exists."""
    candidate = Path(name_or_path)
    if candidate.suffix in (".yaml", ".yml") or "/" in name_or_path:
        if not candidate.is_file():
            raise ConfigError(f"scenario file {name_or_path} does not exist")
        return candidate
    shipped = resources.files("producer_sim.scenarios").joinpath(f"{name_or_path}.yaml")
    if not shipped.is_file():
        raise ConfigError(f"unknown scenario {name_or_path!r} (shipped: {', '.join(scenario_names())}; or give a .yaml path)")
    return Path(str(shipped))


def parse_scenario(text: str, source: str) -> Scenario:
    """Parse YAML text; ConfigError names `source` and the line or field at fault."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark is not None else "?"
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"{source}: {where}: invalid YAML: {problem}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a mapping of scenario fields at the top level")
    try:
        return Scenario.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        raise ConfigError(f"{source}: field {_field_path(first['loc'])}: {first['msg']}{more}") from None


def load_scenario(name_or_path: str) -> Scenario:
    """A shipped scenario by name (`default`) or a scenario file by path."""
    path = scenario_path(name_or_path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read: {exc}") from None
    return parse_scenario(text, str(path))
