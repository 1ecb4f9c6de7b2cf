"""`paylimit rules set FILE | set --name ... / show / rm NAME / export`: the limit rules, as data on
the compacted rules topic, read live by every worker (from its next batch on)."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from pydantic import ValidationError
from rich.markup import escape
from rich.table import Table

from paylimit.cli.common import connected_settings, console
from paylimit.errors import ConfigError
from paylimit.rules import (DEFAULT_RULE, Rule, effective_rules, load_rules, read_rules, rules_yaml,
                            write_rules)

app = typer.Typer(help="Limit rules (counts and amounts, heads-ups and alerts), read live by every worker.",
                  no_args_is_help=True)


def _rule_of_options(options: dict[str, Any]) -> Rule:
    """A rule from `set --name ...`, or ConfigError naming the option that is wrong."""
    try:
        limit = Decimal(options.pop("limit"))
    except (InvalidOperation, TypeError):
        raise ConfigError("--limit: a number is needed") from None
    warn = options.pop("warn")
    tiers = ([{"name": "warn", "percent": warn}] if warn.strip() not in ("0", "") else []) + [{"name": "alert"}]
    filter_ = {"categories": options.pop("category") or None, "p2p_only": options.pop("p2p_only"),
               "currency": options.pop("currency")}
    users = options.pop("user") or None
    try:
        return Rule.model_validate({**options, "limit": limit, "tiers": tiers, "filter": filter_, "users": users})
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "rule"
        raise ConfigError(f"--{where.replace('_', '-')}: {first['msg'].removeprefix('Value error, ')}") from None


@app.command("set")
def set_rules(
    file: Annotated[Optional[Path], typer.Argument(help="A YAML rules file (`rules:` and a list of rules)")] = None,
    name: Annotated[Optional[str], typer.Option(help="One rule's name (instead of a file)")] = None,
    measure: Annotated[str, typer.Option(help="count (succeeded transactions) or amount (their sum)")] = "count",
    limit: Annotated[Optional[str], typer.Option(help="The limit: a count, or an amount in --currency")] = None,
    window: Annotated[str, typer.Option(help="calendar_day (the user's local day), rolling_24h or from_first_24h")] = "calendar_day",
    warn: Annotated[str, typer.Option(help="A heads-up at this % of the limit (0: none)")] = "80",
    category: Annotated[Optional[list[str]], typer.Option(help="Count only these categories (repeat)")] = None,
    p2p_only: Annotated[bool, typer.Option("--p2p-only", help="Count only P2P payments (merchant_id null)")] = False,
    currency: Annotated[Optional[str], typer.Option(help="Count only this currency (needed by amount)")] = None,
    user: Annotated[Optional[list[str]], typer.Option(help="Apply to these users only (repeat; default all)")] = None,
    shadow: Annotated[bool, typer.Option("--shadow", help="Evaluate it live, its alerts on the shadow topic, "
                                         "never delivered (`paylimit rules promote` makes it live)")] = False,
) -> None:
    """Add or replace rules: those of FILE, or the one the options describe."""
    if (file is None) == (name is None):
        raise ConfigError("give a rules file or --name (and the rule's options), not both")
    if file is not None:
        rules = load_rules(file)
    else:
        rules = [_rule_of_options(dict(name=name, measure=measure, limit=limit, window=window, warn=warn,
                                       category=category, p2p_only=p2p_only, currency=currency, user=user,
                                       shadow=shadow))]
    write_rules(connected_settings(), rules)
    console.print(f"rules set: {', '.join(r.name for r in rules)}", highlight=False, markup=False)


@app.command("rm")
def remove(name: Annotated[str, typer.Argument(help="The rule's name")]) -> None:
    """Remove a rule (its alerts already sent stay sent)."""
    if name == DEFAULT_RULE:
        raise ConfigError(f"{DEFAULT_RULE} is built in: it cannot be removed")
    s = connected_settings()
    if name not in read_rules(s):
        raise ConfigError(f"no rule named {name!r} (see `paylimit rules show`)")
    write_rules(s, [], [name])
    console.print(f"rule {name} removed", highlight=False, markup=False)


@app.command("promote")
def promote(name: Annotated[str, typer.Argument(help="The shadow rule's name")]) -> None:
    """Make a shadow rule live from the next record: its windows in progress keep their counts,
    and a tier that fired in shadow is not sent again as live for that window."""
    s = connected_settings()
    rule = read_rules(s).get(name)
    if rule is None or not rule.shadow:
        raise ConfigError(f"no shadow rule named {name!r} (see `paylimit rules show`)")
    write_rules(s, [rule.model_copy(update={"shadow": False})])
    console.print(f"rule {name} promoted: live from the next record", highlight=False, markup=False)


def _describe(rule: Rule) -> list[str]:
    f = rule.filter
    what = ", ".join(x for x in (
        f"categories {'/'.join(f.categories)}" if f.categories else "",
        "P2P only" if f.p2p_only else "", f"in {f.currency}" if f.currency else "") if x) or "all"
    tiers = ", ".join(f"warn {t.percent}%" if t.name == "warn" else "alert over" for t in rule.tiers)
    scope = "all" if rule.users is None else ", ".join(rule.users)
    return [f"{rule.name} (shadow)" if rule.shadow else rule.name, rule.measure, str(rule.limit), rule.window, what, scope, tiers]


@app.command("show")
def show() -> None:
    """List the rules in force (daily_count's limit: PAYLIMIT_DAILY_LIMIT and `paylimit limits`)."""
    s = connected_settings()
    table = Table("rule", "measure", "limit", "window", "counts", "users", "tiers", title="Limit rules")
    for rule in effective_rules(read_rules(s), s.daily_limit):
        table.add_row(*(escape(cell) for cell in _describe(rule)))
    console.print(table)


@app.command("export")
def export() -> None:
    """Print the stored rules as a rules file (`paylimit rules set` reads it back)."""
    rules = read_rules(connected_settings())
    typer.echo(rules_yaml([rules[n] for n in sorted(rules)]), nl=False)
