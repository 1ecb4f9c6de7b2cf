"""The worker's record accounting: every consumed record ends in exactly one of these buckets."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from stream_app.counting import Outcome


@dataclass
class Metrics:
    consumed: int = 0
    replayed: int = 0  # delivered again after a restart or rebalance, already in the state: skipped
    outcomes: Counter[str] = field(default_factory=Counter)
    dead_lettered: Counter[str] = field(default_factory=Counter)

    def outcome(self, outcome: Outcome) -> None:
        self.consumed += 1
        self.outcomes[outcome] += 1  # a str enum: counted under its value

    def dead_letter(self, error: str) -> None:
        self.consumed += 1
        self.dead_lettered[error] += 1

    def as_dict(self) -> dict:
        o = self.outcomes
        return {
            "consumed": self.consumed,
            "counted": o["counted"] + o["crossed"],
            "duplicates": o["duplicate"] + o["resend"],
            "not_succeeded": o["not_succeeded"],
            "dead_lettered": sum(self.dead_lettered.values()),
            "dead_lettered_by_error": dict(self.dead_lettered),
            "alerts_sent": o["crossed"],
            "alerts_resent": o["resend"],
            "replayed": self.replayed,
        }

    def line(self) -> str:
        return " ".join(f"{k}={v}" for k, v in self.as_dict().items() if not isinstance(v, dict))
