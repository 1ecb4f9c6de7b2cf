"""`paylimit demo`: the whole system locally, a scenario with a live display, then the verification.

Starts Kafka and Redis (unless configured or already running), a worker and the notifier as
child processes, sends a scenario on a virtual clock, waits until the pipeline has drained, shows
the notifications and the verification, and stops what it started. Each run has its own topics,
consumer groups and directory (`PAYLIMIT_HOME/runs/<run>`), so runs never mix.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated
from zoneinfo import ZoneInfo

import typer
from confluent_kafka import KafkaException
from rich.console import Group
from rich.live import Live
from rich.table import Table

from paylimit.cli.common import console, masked, settings
from paylimit.cli.notifications import notifications_table, verdict, verification_table
from paylimit.errors import InfraError
from paylimit.rules import EXAMPLE_RULES, load_rules, write_rules
from paylimit.kafka import CONNECT_TIMEOUT, ClusterHealth, ClusterWatch, ensure_topics, wait_for_broker
from paylimit.runtime import local
from paylimit.runtime.broker_kill import BrokerKill
from paylimit.runtime.pipeline import Pipeline
from paylimit.settings import Settings
from paylimit.verify import read_expected, verify


def _run_settings(base: Settings) -> Settings:
    run = datetime.now(UTC).strftime("demo-%Y%m%d-%H%M%S")
    return base.isolated(run, base.home / "runs" / run)


def _needs_local_infra(base: Settings) -> bool:
    """True when this demo must start the local Kafka and Redis (and so stop them at the end)."""
    if base.kafka_bootstrap_servers and base.redis_url:
        return False
    state = local.read_state(base)
    return not (state.kafka_running and state.redis_running)


def _connect(base: Settings, start_infra: bool, brokers: int | None = None) -> Settings:
    """Settings on reachable Kafka and Redis, starting the local ones (`brokers` Kafka nodes) if asked to."""
    if base.kafka_bootstrap_servers and base.redis_url:
        wait_for_broker(base, timeout=CONNECT_TIMEOUT)
        return base
    if start_infra:
        with console.status("Starting Kafka and Redis…") as status:

            def announce(m: str) -> None:
                console.print(f"[cyan]{m}[/]")
                status.update(m)

            local.up(base, announce=announce, brokers=brokers or 1)  # `make demo`: one broker, whatever ran last
    running = local.read_state(base).brokers
    if brokers and not base.kafka_bootstrap_servers and running != brokers:
        raise InfraError(f"a local Kafka of {running} broker(s) is running: `paylimit infra down` first "
                         f"for a demo on {brokers}")
    s = local.resolve(base)
    wait_for_broker(s, timeout=CONNECT_TIMEOUT)
    return s


class Progress:
    """What the live display shows, refreshed from the services about twice a second."""

    def __init__(self, pipeline: Pipeline, total: int) -> None:
        self.pipeline, self.total = pipeline, total
        self.sent = 0
        self.clock: datetime | None = None
        self.began = time.monotonic()
        self.metrics: dict = {}
        self.lag = -1  # unknown until the first refresh
        self.delivered: list = []
        self.rates: dict[str, float] = {"sent": 0.0, "processed": 0.0}
        self._last = (time.monotonic(), 0, 0)
        self.cluster = ClusterWatch(pipeline.settings, timeout=2)
        self.brokers_total = 0  # the most brokers the cluster has listed
        self.health: ClusterHealth | None = None
        self.failure: InfraError | None = None

    def watch(self, stop: threading.Event) -> None:
        """refresh() about twice a second until `stop`, in a thread of its own: a look that waits on
        a broker just killed (up to its timeouts) must not freeze the display."""
        while not stop.is_set():
            try:
                self.refresh()
            except InfraError as exc:
                self.failure = exc
                return
            except Exception:
                if stop.is_set():  # the demo stopped the pipeline under a look in flight (Ctrl-C)
                    return
                raise
            stop.wait(0.5)

    def refresh(self) -> None:
        from paylimit.notification_record import read_delivered

        try:  # first: the lag below may wait on a broker just killed
            self.health = self.cluster.health()
            self.brokers_total = max(self.brokers_total, len(self.health.brokers))
        except KafkaException:
            self.health = None  # not answering at this moment
        self.metrics = self.pipeline.worker_metrics() or self.metrics
        self.lag = self.pipeline.lags()[0]
        self.delivered = read_delivered(self.pipeline.settings)
        now, sent, processed = time.monotonic(), self.sent, self.metrics.get("consumed", 0)
        then, sent0, processed0 = self._last
        if now - then >= 1.0:
            self.rates = {"sent": (sent - sent0) / (now - then), "processed": (processed - processed0) / (now - then)}
            self._last = (now, sent, processed)

    def render(self) -> Table:
        m = self.metrics
        today = max((n.local_date for n in self.delivered), default=None)
        table = Table(title="paylimit demo", show_header=False, min_width=64)
        table.add_column(style="bold")
        table.add_column(justify="right")
        zone = self.pipeline.settings.default_timezone
        table.add_row("simulated clock",
                      f"{self.clock.astimezone(ZoneInfo(zone)):%Y-%m-%d %H:%M} {zone}" if self.clock else "-")
        table.add_row("events sent", f"{self.sent:,} / {self.total:,}  ({self.rates['sent']:,.0f}/s)")
        table.add_row("events processed", f"{m.get('consumed', 0):,}  ({self.rates['processed']:,.0f}/s)")
        table.add_row("consumer lag", f"{self.lag:,}")
        h = self.health
        table.add_row("Kafka brokers up", f"{len(h.brokers)} / {self.brokers_total}  (under-replicated partitions "
                      f"{h.under_replicated})" if h else f"? / {self.brokers_total}")
        table.add_row("users over the limit today",
                      str(sum(n.local_date == today for n in self.delivered)) + (f"  ({today})" if today else ""))
        table.add_row("notifications delivered", str(len(self.delivered)))
        letters = m.get("dead_lettered_by_error", {})
        table.add_row("dead-lettered", f"{m.get('dead_lettered', 0)}  " + ", ".join(f"{k} {v}" for k, v in sorted(letters.items())))
        table.add_row("elapsed", f"{time.monotonic() - self.began:.0f} s")
        return table


def demo(
    scenario: Annotated[str, typer.Option(help="Scenario name or .yaml file")] = "default",
    seed: Annotated[int, typer.Option(help="Random seed of the scenario")] = 1,
    users: Annotated[int | None, typer.Option(min=1, help="Rescale the scenario to about N users")] = None,
    duration: Annotated[float, typer.Option(min=1, help="Real seconds the scenario's simulated days take")] = 60,
    speed: Annotated[float | None, typer.Option(min=0, help="Simulated seconds per real second (overrides --duration)")] = None,
    workers: Annotated[int, typer.Option(min=1, help="Stream worker processes")] = 1,
    brokers: Annotated[int | None, typer.Option(min=1, max=9, help="Kafka brokers of the local infra it starts "
                                                "(default 1)")] = None,
    kill_broker_at: Annotated[float | None, typer.Option(min=0, help="kill -9 a Kafka broker (the busiest leader) "
                                                         "SECONDS into the run and start it again 20 s later; "
                                                         "needs --brokers 3")] = None,
    notifiers: Annotated[int | None, typer.Option(min=1, help="Notifier processes, each with a home of its own (as "
                                                              "on several machines), sharing one record; default 1, "
                                                              "2 on a cluster (--brokers 2 or more)")] = None,
    keep_running: Annotated[bool, typer.Option(help="Leave Kafka, Redis and the services running at the end")] = False,
    rules: Annotated[Path, typer.Option(help="Limit rules written before the run, besides daily_count and the "
                                             "scenario's")] = EXAMPLE_RULES,
) -> None:
    """Run the whole system locally on a scenario, live, then show the notifications and their verification."""
    from producer_sim.generator import generate
    from producer_sim.publisher import publish_limits
    from producer_sim.scenario import load_scenario
    from producer_sim.simulation import run_plan

    if kill_broker_at is not None and (brokers or 0) < 3:
        raise InfraError("--kill-broker-at needs a local cluster that survives losing a broker: --brokers 3")
    plan = generate(load_scenario(scenario), seed, users=users)  # a bad scenario fails before anything starts
    limit_rules = [*plan.scenario.rules, *load_rules(rules)]  # so does a bad rules file
    base = settings()
    started_infra = _needs_local_infra(base)
    pipeline: Pipeline | None = None
    kill: BrokerKill | None = None
    interrupted = False
    clean = False
    looking = threading.Event()  # set: the progress display stops looking
    try:
        s = _run_settings(_connect(base, started_infra, brokers))
        (s.home / "logs").mkdir(parents=True, exist_ok=True)
        # this process's own Kafka clients (lag, simulator) log beside the services, not into the display
        logging.basicConfig(filename=s.home / "logs" / "demo.log", level=logging.INFO,
                            format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        pipeline = Pipeline(s)
        ensure_topics(s)
        publish_limits(s, plan.overrides)  # before the worker starts, so it reads them first
        write_rules(s, limit_rules)
        pipeline.start(workers)
        for _ in range((notifiers or (2 if (brokers or 1) > 1 else 1)) - 1):
            pipeline.add_notifier()
        dashboard = pipeline.start_dashboard()
        console.print(f"dashboard: [bold]{dashboard}[/] (live while the demo runs)")
        span = (max(r.at for r in plan.records) - min(r.at for r in plan.records)).total_seconds()
        progress = Progress(pipeline, len(plan.records))

        def sent_one(n: int) -> None:
            progress.sent += n

        pace = speed if speed is not None else max(span / duration, 1.0)
        outcome: dict = {}  # the plan sent, and the oracle's outputs written under the run's home
        sender = threading.Thread(target=lambda: outcome.update(result=run_plan(
            s, plan, s.home, speed=pace, on_progress=sent_one, write_limits=False, rules=limit_rules)), daemon=True)
        console.print(f"run [bold]{s.app_id}[/]: scenario {plan.scenario.name} (seed {seed}), "
                      f"{len(plan.records):,} events over {span / 86400:.1f} simulated days, logs in {s.home / 'logs'}")
        if kill_broker_at is not None:
            kill = BrokerKill(base, s, kill_broker_at, announce=lambda m: console.print(m, style="bold yellow"))
        with Live(progress.render(), console=console, refresh_per_second=4) as live:
            sender.start()
            if kill:
                kill.thread.start()
            watcher = threading.Thread(target=progress.watch, args=(looking,), daemon=True)
            watcher.start()
            while sender.is_alive() or progress.lag:
                pipeline.check_running()  # a crashed worker would leave a lag that never drains
                if progress.failure:
                    raise progress.failure
                sent = progress.sent
                progress.clock = plan.records[min(sent, len(plan.records)) - 1].at if sent else None
                live.update(progress.render())
                time.sleep(0.25)
            looking.set()
            watcher.join()
            pipeline.wait_drained(timeout=120)
            if kill:
                kill.wait()
            progress.refresh()
            live.update(progress.render())
        console.print()
        if "result" not in outcome:
            raise InfraError("the simulator stopped before sending everything (see above)")
        clean = _report(s, pipeline, dashboard)
    except KeyboardInterrupt:
        interrupted = True
        console.print("[yellow]interrupted: stopping everything[/]")
    finally:
        looking.set()
        if kill:
            kill.wait()  # a killed broker is running again before anything is stopped
        if keep_running and not interrupted and pipeline:
            _left_running(base, pipeline)
        else:
            if pipeline:
                pipeline.stop()
            if started_infra:
                local.down(base)
    if interrupted:
        raise typer.Exit(130)
    # decided before anything stops: the delivered alerts are read from Redis
    raise typer.Exit(0 if clean else 1)


def _left_running(base: Settings, pipeline: Pipeline) -> None:
    """List everything the demo leaves running, and record it for `paylimit infra down`."""
    services = pipeline.running()
    local.keep_services(base, services)
    state = local.read_state(base)
    table = Table("still running", "pid", "address", box=None,
                  title="left running: `paylimit infra down` stops all of it", title_justify="left")
    for svc in services:
        table.add_row(svc["name"], str(svc["pid"]), svc["address"])
    if not base.kafka_bootstrap_servers and state.kafka_running:  # the local infra, not one of the user's own
        for pid, address in zip(state.kafka_pids, (state.kafka_bootstrap or "").split(",")):
            table.add_row("kafka", str(pid), address)
    if not base.redis_url and state.redis_running:
        table.add_row("redis", str(state.redis_pid), masked(state.redis_url))
    console.print(table)


def _delivered(s: Settings) -> list:
    from paylimit.notification_record import read_delivered

    return read_delivered(s)


def _report(s: Settings, pipeline: Pipeline, dashboard: str) -> bool:
    """Show the latest notifications and the verification; True when it is clean."""
    from producer_sim.simulation import EXPECTED_ALERTS

    delivered = _delivered(s)
    result = verify(read_expected(s.home / EXPECTED_ALERTS), delivered)
    latest = sorted(delivered, key=lambda n: n.delivered_at)[-10:]
    console.print(notifications_table(latest, title=f"latest notifications ({len(delivered)} delivered)"))
    console.print(verification_table(result))
    console.print(verdict(result))
    paths = Table(show_header=False, box=None)
    paths.add_row("notifications log", str(s.notifications_log))
    paths.add_row("expected alerts", str(s.home / EXPECTED_ALERTS))
    paths.add_row("service logs", str(s.home / "logs"))
    paths.add_row("usage endpoint", f"{pipeline.worker_url()}/users/USER_ID/usage")
    paths.add_row("dashboard", dashboard)
    # the run's record in Redis is named after its app id (the home stays the infra's, where it is found)
    paths.add_row("again", f"PAYLIMIT_APP_ID={s.app_id} paylimit verify --expected {s.home / EXPECTED_ALERTS}")
    console.print(Group(paths))
    return result.clean
