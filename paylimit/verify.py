"""Delivered notifications vs the simulator's expected alerts: missing, extra, duplicate, wrong field.

`verify(expected, delivered)` is a pure function over `AlertFacts` (the shared record's
`Notification`s are AlertFacts too); `read_expected(path)` loads `expected_alerts.jsonl`.
Every AlertFacts field is compared: pydantic gives `date`/aware `datetime` values, and aware
datetimes compare as instants, so the same moment written with another offset is equal;
`transaction_ids` compare as lists (order matters: arrival order).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable

from pydantic import BaseModel, ValidationError

from paylimit.contracts import AlertFacts, ExpectedAlert
from paylimit.errors import ConfigError

COMPARED_FIELDS: tuple[str, ...] = tuple(AlertFacts.model_fields)


class Verification(BaseModel):
    """The outcome; `clean` when nothing is missing, extra, duplicated or wrong."""

    expected: int
    delivered: int  # notifications delivered (lines), duplicates included
    missing: list[str]  # expected, never delivered
    extra: list[str]  # delivered, never expected
    duplicate: list[str]  # delivered more than once
    wrong_field: dict[str, list[str]]  # alert_id -> the AlertFacts fields that differ

    @property
    def clean(self) -> bool:
        return not (self.missing or self.extra or self.duplicate or self.wrong_field)

    def counts(self) -> dict[str, int]:
        return {"expected": self.expected, "delivered": self.delivered, "missing": len(self.missing),
                "extra": len(self.extra), "duplicate": len(self.duplicate), "wrong_field": len(self.wrong_field)}

    def as_json(self) -> dict[str, Any]:
        """The machine-readable form (`paylimit verify --json`): the counts and the offending ids."""
        return {**self.counts(), "clean": self.clean, "missing_ids": self.missing, "extra_ids": self.extra,
                "duplicate_ids": self.duplicate, "wrong_field_ids": self.wrong_field}


def differing_fields(expected: AlertFacts, delivered: AlertFacts) -> list[str]:
    """The AlertFacts fields whose values differ (datetimes as instants, lists as lists)."""
    return [f for f in COMPARED_FIELDS if getattr(expected, f) != getattr(delivered, f)]


def verify(expected: Iterable[AlertFacts], delivered: Iterable[AlertFacts]) -> Verification:
    """Compare by alert_id; pure: no I/O."""
    want: dict[str, AlertFacts] = {}
    for e in expected:
        want.setdefault(e.alert_id, e)
    got: dict[str, list[AlertFacts]] = {}
    total = 0
    for d in delivered:
        got.setdefault(d.alert_id, []).append(d)
        total += 1
    wrong: dict[str, list[str]] = {}
    for alert_id, copies in got.items():
        if alert_id not in want:
            continue
        fields: list[str] = []
        for copy in copies:
            fields += [f for f in differing_fields(want[alert_id], copy) if f not in fields]
        if fields:
            wrong[alert_id] = fields
    return Verification(
        expected=len(want),
        delivered=total,
        missing=sorted(a for a in want if a not in got),
        extra=sorted(a for a in got if a not in want),
        duplicate=sorted(a for a, copies in got.items() if len(copies) > 1),
        wrong_field=dict(sorted(wrong.items())),
    )


def read_expected(path: Path) -> list[ExpectedAlert]:
    """The expected alerts (one ExpectedAlert JSON per line); ConfigError if missing or unparseable."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"expected alerts file not found: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read expected alerts file {path}: {exc}") from None
    out: list[ExpectedAlert] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            out.append(ExpectedAlert.model_validate_json(line))
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "line"
            raise ConfigError(f"{path}:{number}: not an expected alert ({where}: {first['msg']})") from None
    return out
