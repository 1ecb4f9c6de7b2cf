"""`paylimit limits set USER N | clear USER | show`: per-user daily limits, effective without a restart."""

from __future__ import annotations

from typing import Annotated, cast

import typer
from confluent_kafka import Consumer, Producer, TopicPartition
from rich.table import Table

from paylimit.cli.common import connected_settings, console
from paylimit.contracts import LimitOverride, encode
from paylimit.errors import InfraError
from paylimit.kafka import ensure_topics, producer_config
from paylimit.settings import Settings

app = typer.Typer(help="Per-user daily limit overrides (read live by every worker).", no_args_is_help=True)


def _publish(settings: Settings, user_id: str, value: bytes | None) -> None:
    ensure_topics(settings)
    errors: list[str] = []
    producer = Producer(producer_config(settings, **{"enable.idempotence": True, "acks": "all"}))
    producer.produce(settings.topic_limits, key=user_id.encode(), value=value,
                     on_delivery=lambda err, _msg: errors.append(err.str()) if err else None)
    if producer.flush(30) or errors:
        raise InfraError(f"could not write the limit to {settings.topic_limits}: {' '.join(errors) or 'timed out'}")


def read_overrides(settings: Settings) -> dict[str, int]:
    """The current overrides: the compacted topic read from the start to its end."""
    ensure_topics(settings)
    consumer = Consumer(settings.kafka_client_config(**{"group.id": f"{settings.app_id}-limits-show",
                                                        "enable.auto.commit": False}))
    try:
        tp = TopicPartition(settings.topic_limits, 0)
        low, high = consumer.get_watermark_offsets(tp, timeout=10)
        overrides: dict[str, int] = {}
        if high <= low:
            return overrides
        consumer.assign([TopicPartition(settings.topic_limits, 0, low)])
        while True:
            msg = consumer.poll(5)
            if msg is None:
                raise InfraError(f"timed out reading {settings.topic_limits}")
            if msg.error():
                raise InfraError(str(msg.error()))
            user = (msg.key() or b"").decode()
            value = msg.value()
            if value is None:
                overrides.pop(user, None)
            else:
                overrides[user] = LimitOverride.model_validate_json(value).limit
            if cast(int, msg.offset()) >= high - 1:
                return overrides
    finally:
        consumer.close()


@app.command("set")
def set_limit(
    user_id: Annotated[str, typer.Argument(help="The user")],
    limit: Annotated[int, typer.Argument(min=0, help="Successful transactions allowed per local day")],
) -> None:
    """Give USER a daily limit of N (the next transaction of theirs is judged by it)."""
    _publish(connected_settings(), user_id, encode(LimitOverride(user_id=user_id, limit=limit)))
    console.print(f"limit of {user_id} set to {limit}")


@app.command("clear")
def clear_limit(user_id: Annotated[str, typer.Argument(help="The user")]) -> None:
    """Remove USER's override: the default limit applies again."""
    _publish(connected_settings(), user_id, None)
    console.print(f"limit override of {user_id} removed")


@app.command("show")
def show() -> None:
    """List the per-user overrides and the default limit."""
    s = connected_settings()
    table = Table("user", "daily limit", title=f"Limit overrides (default {s.daily_limit})")
    for user, limit in sorted(read_overrides(s).items()):
        table.add_row(user, str(limit))
    console.print(table)
