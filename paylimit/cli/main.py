"""The `paylimit` root command: joins the command groups and turns user mistakes into one line."""

from __future__ import annotations

from typing import Any

import typer
from confluent_kafka import KafkaException

from paylimit.cli import infra, limits, worker
from paylimit.cli import notifications, notifier
from paylimit.cli.common import fail
from paylimit.errors import PaylimitError


class _App(typer.Typer):
    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().__call__(*args, **kwargs)
        except PaylimitError as exc:
            fail(str(exc))
        except KafkaException as exc:  # anything of the broker's a command did not expect
            fail(f"Kafka: {exc.args[0].str()}")


app = _App(help="paylimit: real-time daily payment-limit monitoring on Apache Kafka.", no_args_is_help=True,
           pretty_exceptions_enable=False)
app.add_typer(infra.app, name="infra")
app.add_typer(limits.app, name="limits")
app.command("worker")(worker.worker)
app.command("notifier")(notifier.notifier)
app.command("notifications")(notifications.notifications)
app.command("verify")(notifications.verify)
from paylimit.cli import simulate  # noqa: E402  (kept on its own line: several people edit this file)
app.command("simulate")(simulate.simulate)
from paylimit.cli import chaos  # noqa: E402  (kept on its own line: several people edit this file)
app.command("chaos")(chaos.chaos)
from paylimit.cli import demo  # noqa: E402  (kept on its own line: several people edit this file)
app.command("demo")(demo.demo)
from paylimit.cli import dashboard  # noqa: E402  (kept on its own line: several people edit this file)
app.command("dashboard")(dashboard.dashboard)
from paylimit.cli import webhook  # noqa: E402  (kept on its own line: several people edit this file)
app.add_typer(webhook.app, name="webhook")
from paylimit.cli import rules  # noqa: E402  (kept on its own line: several people edit this file)
app.add_typer(rules.app, name="rules")
from paylimit.cli import backtest  # noqa: E402  (kept on its own line: several people edit this file)
app.command("backtest")(backtest.backtest)
from paylimit.cli import shadow  # noqa: E402  (kept on its own line: several people edit this file)
app.add_typer(shadow.app, name="shadow")
