"""The notifications' dead letters: alerts the webhook did not take, on `PAYLIMIT_TOPIC_NOTIFICATIONS_DLQ`.

The notifier writes one (`DeadLetterWriter.send`) and waits for the broker's ack before it logs
the alert, so no logged alert's webhook failure is forgotten; a notifier killed in between tries
the webhook again on replay and may write the dead letter twice (at-least-once, keyed by
alert_id: `read_dead_letters` keeps the latest per alert).
`notifier.redelivery` sends them again.
"""

from __future__ import annotations

import logging

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, Producer, TopicPartition
from pydantic import ValidationError

from paylimit.contracts import NotificationDeadLetter, encode
from paylimit.errors import InfraError
from paylimit.settings import Settings

log = logging.getLogger("paylimit.notifier")



class DeadLetterWriter:
    """Writes dead letters, each acknowledged by the broker before `send` returns; the producer opens on first use."""

    def __init__(self, settings: Settings, timeout: float = 10.0) -> None:
        self.settings, self.timeout = settings, timeout
        self._producer: Producer | None = None

    def send(self, dead: NotificationDeadLetter) -> None:
        if self._producer is None:
            self._producer = Producer(self.settings.kafka_client_config(**{"enable.idempotence": True, "acks": "all"}))
        errors: list[str] = []
        acked: list[bool] = []
        self._producer.produce(self.settings.topic_notifications_dlq, key=dead.alert_id.encode(), value=encode(dead),
                               on_delivery=lambda err, msg: errors.append(str(err)) if err else acked.append(True))
        self._producer.flush(self.timeout)
        if not acked:
            # raised as a Kafka error: the notifier retries the alert, it is never logged without this
            raise KafkaException(f"dead letter of {dead.alert_id} not written: {errors[0] if errors else 'timed out'}")


def read_dead_letters(settings: Settings, timeout: float = 10.0) -> list[NotificationDeadLetter]:
    """Every dead letter on the topic up to its end now, the latest per alert, oldest first."""
    topic = settings.topic_notifications_dlq
    consumer = Consumer(settings.kafka_client_config(**{"group.id": f"{settings.app_id}-webhook-cli",
                                                        "enable.auto.commit": False}))
    latest: dict[str, NotificationDeadLetter] = {}
    try:
        meta = consumer.list_topics(topic, timeout=timeout).topics.get(topic)
        if meta is None or meta.error is not None:
            return []  # no notifier has created it yet: nothing was dead-lettered
        ends = {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=timeout) for p in meta.partitions}
        left = {p for p, (low, high) in ends.items() if high > low}
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in left])
        while left:
            msg = consumer.poll(timeout)
            if msg is None:
                raise InfraError(f"reading {topic}: no record within {timeout:g} s")
            if msg.error() is not None:
                continue
            try:
                dead = NotificationDeadLetter.model_validate_json(msg.value() or b"")
                latest.pop(dead.alert_id, None)
                latest[dead.alert_id] = dead
            except ValidationError:
                log.warning("%s[%s]@%s is not a notification dead letter: skipped", topic, msg.partition(),
                            msg.offset())
            if (msg.offset() or 0) + 1 >= ends[msg.partition()][1]:
                left.discard(msg.partition())
    except KafkaException as exc:
        raise InfraError(f"reading {topic}: {exc.args[0].str() if exc.args else exc}") from None
    finally:
        consumer.close()
    return sorted(latest.values(), key=lambda d: d.dead_lettered_at)
