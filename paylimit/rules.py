"""Limit rules as data: the `Rule` model, its YAML file format, and the default rule.

A rule counts a user's succeeded transactions that pass its filter (`measure: count`) or sums
their amounts in one currency (`measure: amount`, exact Decimal arithmetic) over a window, and has
tiers: `warn` fires on the transaction that takes the measure to at least `percent` % of the
limit, `alert` on the one that takes it over the limit; each at most once per user per window.
Rules live on the compacted topic `settings.topic_rules` (key = the rule's name, value = the
rule's JSON; a tombstone removes it: `write_rules`, `read_rules`). Besides them there is always
`daily_count` (`default_rule`). The worker follows them (`stream_app.rulebook`), `paylimit rules`
writes them, and the simulator's oracle reads the same models (it shares nothing else with the
worker).
"""

from __future__ import annotations

import hashlib
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Iterable, Literal, Sequence

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, model_validator

from paylimit.contracts import AMOUNT_BELOW, CURRENCIES, MAX_DAILY_LIMIT, TEXT_MAX, alert_id_for, encode
from paylimit.errors import ConfigError
from paylimit.kafka import ANY_PARTITION, ensure_topics, produce_all, read_to_end
from paylimit.settings import Settings

DEFAULT_RULE = "daily_count"
#: the demo's rules (`daily_amount`, `p2p_24h`), an example of the file format
EXAMPLE_RULES = Path(__file__).with_name("example_rules.yaml")
DEFAULT_WARN_PERCENT = Decimal(80)
RuleName = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")]
Measure = Literal["count", "amount"]
Window = Literal["calendar_day", "rolling_24h", "from_first_24h"]
TierName = Literal["warn", "alert"]


def _currency(code: str | None) -> str | None:
    if code is not None and code not in CURRENCIES:
        raise ValueError(f"unknown ISO 4217 currency {code!r}")
    return code


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RuleFilter(_Strict):
    """Which succeeded transactions a rule counts (all of them by default)."""

    categories: list[Annotated[str, Field(min_length=1, max_length=TEXT_MAX)]] | None = None
    p2p_only: bool = False  # only person-to-person payments: `merchant_id` null
    currency: Annotated[str | None, AfterValidator(_currency)] = None  # required by `measure: amount`


class Tier(_Strict):
    """`alert`: over the limit. `warn`: at least `percent` % of it."""

    name: TierName
    percent: Annotated[Decimal, Field(gt=0, le=100)] | None = None

    @model_validator(mode="after")
    def _percent_for_warn(self) -> "Tier":
        if (self.name == "warn") != (self.percent is not None):
            raise ValueError("a warn tier needs `percent` (0 < percent <= 100); an alert tier has none")
        return self


def _default_tiers() -> list[Tier]:
    return [Tier(name="warn", percent=DEFAULT_WARN_PERCENT), Tier(name="alert")]


Limit = Annotated[Decimal, Field(ge=0, lt=AMOUNT_BELOW * 1000, allow_inf_nan=False)]


class Rule(_Strict):
    name: RuleName
    measure: Measure = "count"
    limit: Limit
    window: Window = "calendar_day"
    filter: RuleFilter = Field(default_factory=RuleFilter)
    users: list[Annotated[str, Field(min_length=1, max_length=TEXT_MAX)]] | None = None  # scope: None = all
    overrides: dict[Annotated[str, Field(min_length=1, max_length=TEXT_MAX)], Limit] = Field(default_factory=dict)
    tiers: list[Tier] = Field(default_factory=_default_tiers, min_length=1)
    shadow: bool = False  # evaluated live, its alerts on the shadow topic, never delivered (`rules promote`)

    @model_validator(mode="after")
    def _consistent(self) -> "Rule":
        if self.name == DEFAULT_RULE:
            raise ValueError(f"{DEFAULT_RULE} is built in (PAYLIMIT_DAILY_LIMIT, `paylimit limits set`)")
        if len({t.name for t in self.tiers}) != len(self.tiers):
            raise ValueError("each tier may appear once")
        self.tiers.sort(key=lambda t: t.name != "warn")  # the order they are judged in: a heads-up first
        if self.measure == "amount" and self.filter.currency is None:
            raise ValueError("an amount rule needs filter.currency (other currencies do not count)")
        if self.measure == "count":
            # the worker keeps a count rule's ids up to its crossing (stream_app.state): bounded by this
            for limit in (self.limit, *self.overrides.values()):
                if limit != int(limit) or limit > MAX_DAILY_LIMIT:
                    raise ValueError(f"a count limit is a whole number from 0 to {MAX_DAILY_LIMIT}, not {limit}")
        return self

    def limit_for(self, user_id: str) -> Decimal:
        return self.overrides.get(user_id, self.limit)

    def applies_to(self, user_id: str) -> bool:
        return self.users is None or user_id in self.users


def default_rule(daily_limit: int) -> Rule:
    """`daily_count`: today's rule (count, calendar day, PAYLIMIT_DAILY_LIMIT, per-user overrides
    from `paylimit limits`), warned at 80 %. Built in: a stored rule may not take its name."""
    return Rule.model_construct(name=DEFAULT_RULE, measure="count", limit=Decimal(daily_limit),
                                window="calendar_day", filter=RuleFilter(), users=None, overrides={},
                                tiers=_default_tiers(), shadow=False)


def rule_alert_id(rule: str, tier: str, user_id: str, window: str) -> str:
    """Deterministic alert id of (rule, tier, user, window); `daily_count`'s `alert` keeps the id a
    version 1 alert had (`alert_id_for`), so scripts that know those ids keep working."""
    if rule == DEFAULT_RULE and tier == "alert":
        return alert_id_for(user_id, date.fromisoformat(window))
    return hashlib.sha256(f"{rule}|{tier}|{user_id}|{window}".encode()).hexdigest()[:32]


class RulesFile(_Strict):
    """A rules file: `rules:` followed by a list of rules."""

    rules: list[Rule]


def parse_rules(text: str, source: str) -> list[Rule]:
    """The rules of a YAML document, or ConfigError in one line naming `source` and the field."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        raise ConfigError(f"{source}: not YAML{where}: {getattr(exc, 'problem', None) or exc}") from None
    try:
        rules = RulesFile.model_validate(data).rules
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = list(first["loc"])
        if len(loc) >= 2 and loc[0] == "rules" and isinstance(data, dict):  # name the rule, not its index
            rule = data["rules"][loc[1]]
            loc[:2] = [f"rule {rule.get('name') or loc[1]!s}" if isinstance(rule, dict) else f"rules[{loc[1]}]"]
        where = ".".join(str(p) for p in loc) or "the file"
        raise ConfigError(f"{source}: {where}: {first['msg'].removeprefix('Value error, ')}") from None
    names = [r.name for r in rules]
    if len(set(names)) != len(names):
        raise ConfigError(f"{source}: rules: a rule name appears twice")
    return rules


def load_rules(path: Path) -> list[Rule]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read the rules file {path}: {getattr(exc, 'strerror', None) or exc}") from None
    return parse_rules(text, str(path))


def effective_rules(stored: dict[str, Rule], daily_limit: int) -> list[Rule]:
    """The rules in force: `daily_count`, then those stored in name order (the order a
    transaction's alerts are raised in)."""
    return [default_rule(daily_limit), *(stored[name] for name in sorted(stored))]


def rules_yaml(rules: list[Rule]) -> str:
    """Rules as a rules file (`paylimit rules export`): `parse_rules` reads it back to the same."""
    data = {"rules": [r.model_dump(mode="json", exclude_defaults=True) | {"name": r.name, "limit": str(r.limit)}
                      for r in rules]}
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)


def write_rules(settings: Settings, rules: Sequence[Rule], removed: Sequence[str] = (), timeout: float = 30.0) -> None:
    """Write rules (key = name) and tombstones of `removed` names to the rules topic; wait for all."""
    if not rules and not removed:
        return
    ensure_topics(settings)
    produce_all(settings, settings.topic_rules,
                [(ANY_PARTITION, r.name.encode(), encode(r)) for r in rules]
                + [(ANY_PARTITION, name.encode(), None) for name in removed], timeout)


def apply_changes(stored: dict[str, Rule], changes: Iterable[tuple[int, bytes | None, bytes | None]]) -> list[str]:
    """Fold records of the rules topic into `stored` (name -> rule); the names whose value does not
    parse (not written by `paylimit rules`): they are no rule."""
    bad: list[str] = []
    for _, key, value in changes:
        name = (key or b"").decode(errors="replace")
        stored.pop(name, None)
        if value is not None:
            try:
                stored[name] = Rule.model_validate_json(value)
            except ValidationError:
                bad.append(name)
    return bad


def read_rules(settings: Settings) -> dict[str, Rule]:
    """The stored rules: the compacted topic read to its end."""
    ensure_topics(settings)
    changes, _ = read_to_end(settings, settings.topic_rules, None, f"{settings.app_id}-rules-show")
    stored: dict[str, Rule] = {}
    apply_changes(stored, changes)
    return stored
