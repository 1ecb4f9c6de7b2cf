"""`paylimit webhook dead-letters | redeliver`: the notifications the webhook did not take, and sending them again."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Optional

import typer
from rich.table import Table

from paylimit.cli.common import connected_settings, console
from paylimit.errors import ConfigError

app = typer.Typer(help="The notifications the webhook did not take: list them, send them again.",
                  no_args_is_help=True)


@app.command("dead-letters")
def dead_letters(
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line: the dead letter's fields "
                                          "+ redelivered_at")] = False,
) -> None:
    """List the dead-lettered notifications (the latest per alert) and whether each was redelivered."""
    from notifier.dead_letters import read_dead_letters
    from paylimit.notification_record import redis_client
    from notifier.redelivery import redelivered_at

    s = connected_settings()
    rows = read_dead_letters(s)
    done = redelivered_at(s, redis_client(s), [d.alert_id for d in rows])
    if as_json:
        for d in rows:
            at = done.get(d.alert_id)
            print(json.dumps({**d.model_dump(mode="json"), "redelivered_at": at.isoformat() if at else None}))
        return
    table = Table(title=f"webhook dead letters ({len(rows)}) on {s.topic_notifications_dlq}")
    for col in ("alert", "user", "local date", "error", "reason", "POSTs", "dead-lettered", "redelivered"):
        table.add_column(col, overflow="fold")
    for d in rows:
        n = d.notification
        table.add_row(d.alert_id[:8] + "…", n.user_id, n.local_date.isoformat(), d.error, d.reason, str(d.attempts),
                      _when(d.dead_lettered_at), _when(done.get(d.alert_id)) or "[yellow]no[/]")
    console.print(table)


@app.command()
def redeliver(
    alert_id: Annotated[Optional[str], typer.Argument(help="The alert to send again (`dead-letters --json`)")] = None,
    every: Annotated[bool, typer.Option("--all", help="Every dead letter not yet redelivered")] = False,
) -> None:
    """POST dead-lettered notifications to PAYLIMIT_WEBHOOK_URL again (Idempotency-Key: alert_id).

    One already redelivered is not sent again. Exit 1 if any could not be delivered."""
    from notifier.dead_letters import read_dead_letters
    from paylimit.notification_record import redis_client
    from notifier.redelivery import redeliver as send_again
    from notifier.webhook import Webhook

    if (alert_id is None) == (not every):
        raise ConfigError("give one ALERT_ID or --all")
    s = connected_settings()
    if not s.webhook_url:
        raise ConfigError("PAYLIMIT_WEBHOOK_URL is not set: there is no webhook to redeliver to")
    rows = read_dead_letters(s)
    if alert_id is not None:
        rows = [d for d in rows if d.alert_id == alert_id]
        if not rows:
            raise ConfigError(f"no dead letter of alert {alert_id} on {s.topic_notifications_dlq}")
    hook, client = Webhook(s.webhook_url.get_secret_value(), s.webhook_timeout), redis_client(s)
    failed = 0
    for d in rows:
        r = send_again(s, client, hook, d)
        failed += r.result in ("failed", "busy")
        style = {"redelivered": "green", "already": "dim"}.get(r.result, "red")
        console.print(f"[{style}]{r.result:<11}[/] {d.alert_id}  {d.notification.user_id} {d.notification.local_date}"
                      f"  {r.detail}", highlight=False, soft_wrap=True)
    console.print(f"{len(rows) - failed} of {len(rows)} delivered to {hook.origin}"
                  + (f", {failed} not delivered" if failed else ""), highlight=False)
    if failed:
        raise typer.Exit(1)


def _when(at: datetime | None) -> str:
    return at.strftime("%Y-%m-%d %H:%M:%S") if at else ""
