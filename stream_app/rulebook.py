"""`RuleBook`: the limit rules in force (`paylimit.rules`), following the compacted rules topic.

The worker asks it before each batch (`refresh`): one request for the topic's end offset, and a read
of what is new when there is any. So a rule written (acknowledged) before a transaction was produced
judges that transaction, and a changed rule applies from the next batch on, without a restart. The
first refresh reads the whole topic, before anything is counted. A value that does not parse (not
written by `paylimit rules`) removes the rule of its key, with a warning: never a crash.
"""

from __future__ import annotations

import logging

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, TopicPartition

from paylimit.errors import InfraError
from paylimit.kafka import read_to_end
from paylimit.rules import Rule, apply_changes, effective_rules
from paylimit.settings import Settings

log = logging.getLogger("paylimit.worker")


class RuleBook:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.stored: dict[str, Rule] = {}
        self.rules: list[Rule] = effective_rules({}, settings.daily_limit)
        self.next_offset = OFFSET_BEGINNING
        self.consumer: Consumer | None = None  # for the end offset only (connected on the first refresh)

    def refresh(self) -> list[Rule]:
        """The rules in force now (blocking: call it off the event loop); InfraError when Kafka does
        not answer."""
        topic = self.settings.topic_rules
        if self.consumer is None:
            self.consumer = Consumer(self.settings.kafka_client_config(**{
                "group.id": f"{self.settings.app_id}-rules", "enable.auto.commit": False}))
        try:
            _, high = self.consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)
        except KafkaException as exc:
            raise InfraError(f"cannot read the end of {topic}: {exc}") from None
        if self.next_offset != OFFSET_BEGINNING and self.next_offset >= high:
            return self.rules
        changes, last = read_to_end(self.settings, topic, {0: self.next_offset}, f"{self.settings.app_id}-rules")
        for name in apply_changes(self.stored, changes):
            log.warning("rule %r on %s does not parse: not applied", name, topic)
        self.next_offset = max(high, last[0] + 1) if 0 in last else max(high, 0)
        self.rules = effective_rules(self.stored, self.settings.daily_limit)
        return self.rules
