"""The paylimit services as child processes: start, kill -9, restart, and wait until drained.

Used by `paylimit demo`, the end-to-end and fault tests and the benchmark, so they all run the
very commands a user runs (`paylimit worker`, `paylimit notifier`).
"""

from __future__ import annotations

import json
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.error import URLError

from paylimit.errors import InfraError
from paylimit.kafka import LagReader
from paylimit.runtime import processes
from paylimit.settings import Settings


@dataclass
class ServiceProcess:
    name: str
    command: str
    settings: Settings
    pid: int | None = None
    restarts: int = 0
    # when the process started: once it has exited and been reaped, its pid may be another
    # process's (pids wrap around at 32768 here), which must never get this service's signals
    started: float | None = None

    @property
    def log(self) -> Path:
        return self.settings.home / "logs" / f"{self.name}.log"

    @property
    def alive(self) -> bool:
        return self.started is not None and processes.started_at(self.pid) == self.started

    def start(self) -> None:
        import os

        env = {**os.environ, **self.settings.as_env(), "PYTHONUNBUFFERED": "1"}
        self.pid = processes.spawn([sys.executable, "-m", "paylimit", self.command], self.log, env=env)
        self.started = processes.started_at(self.pid)

    def kill9(self) -> None:
        assert self.pid is not None
        if self.alive:
            processes.kill9(self.pid)

    def restart(self) -> None:
        self.restarts += 1
        self.start()

    def stop(self) -> None:
        if self.alive:
            processes.stop(self.pid, timeout=20)


@dataclass
class Pipeline:
    """Workers and a notifier on one set of settings (topics, groups, PAYLIMIT_HOME)."""

    settings: Settings
    workers: list[ServiceProcess] = field(default_factory=list)
    notifier: ServiceProcess | None = None
    dashboard: ServiceProcess | None = None
    more_notifiers: list[ServiceProcess] = field(default_factory=list)  # add_notifier()
    # opened on the first look, closed by stop()
    _lag_readers: tuple[LagReader, LagReader] | None = field(default=None, init=False, repr=False)

    def add_worker(self) -> ServiceProcess:
        port, name = processes.free_port(), f"worker-{len(self.workers) + 1}"
        # restarted (after a kill) under its name, a worker takes its partitions back at once; each
        # advertises its own address to the others (explicitly: one in the environment is for one worker)
        worker = ServiceProcess(name, "worker", self.settings.model_copy(update={
            "web_port": port, "worker_instance": name, "web_advertised_url": f"http://{self.settings.web_host}:{port}"}))
        worker.start()
        self.workers.append(worker)
        return worker

    def start(self, workers: int = 1) -> None:
        for _ in range(workers):
            self.add_worker()
        # each notifier's HTTP server (/healthz, /readyz, /metrics) on a port of its own
        self.notifier = ServiceProcess("notifier", "notifier", self.settings.model_copy(update={
            "notifier_port": processes.free_port()}))
        self.notifier.start()

    def add_notifier(self) -> ServiceProcess:
        """One more notifier in the notifier group, with a PAYLIMIT_HOME of its own (as on another machine)."""
        name = f"notifier-{len(self.more_notifiers) + 2}"
        notifier = ServiceProcess(name, "notifier", self.settings.model_copy(update={
            "home": self.settings.home / name, "notifier_port": processes.free_port()}))
        notifier.start()
        self.more_notifiers.append(notifier)
        return notifier

    def worker_url(self, worker: ServiceProcess | None = None) -> str:
        w = worker or next(w for w in self.workers if w.alive)
        return f"http://{w.settings.web_host}:{w.settings.web_port}"

    def notifier_url(self, notifier: ServiceProcess | None = None) -> str:
        n = notifier or self.notifier
        assert n is not None
        return f"http://{n.settings.web_host}:{n.settings.notifier_port}"

    def worker_metrics(self) -> dict:
        """Record accounting summed over the live workers (counters restart with a worker)."""
        total: dict = {}
        for w in self.workers:
            if not w.alive:
                continue
            try:
                with urllib.request.urlopen(f"{self.worker_url(w)}/stats", timeout=2) as resp:
                    for k, v in json.load(resp).items():
                        total[k] = total.get(k, {} if isinstance(v, dict) else 0)
                        if isinstance(v, dict):
                            for e, n in v.items():
                                total[k][e] = total[k].get(e, 0) + n
                        else:
                            total[k] += v
            except (URLError, OSError, ValueError):
                continue
        return total

    def lags(self) -> tuple[int, int]:
        """(transactions not yet committed by the workers, alerts not yet committed by the notifier)."""
        s = self.settings
        if self._lag_readers is None:
            self._lag_readers = (LagReader(s, s.app_id, s.topic_transactions),
                                 LagReader(s, s.notifier_group_id, s.topic_alerts))
        workers, notifier = self._lag_readers
        return workers.lag(), notifier.lag()

    def wait_drained(self, timeout: float = 120.0, settle: float = 1.5) -> None:
        """Until both consumer groups have committed everything, twice `settle` seconds apart."""
        deadline = time.monotonic() + timeout
        quiet_since: float | None = None
        while time.monotonic() < deadline:
            self.check_running()
            if self.lags() == (0, 0):
                quiet_since = quiet_since or time.monotonic()
                if time.monotonic() - quiet_since >= settle and self.lags() == (0, 0):
                    return
            else:
                quiet_since = None
            time.sleep(0.3)
        raise InfraError(f"the pipeline did not drain within {timeout:.0f}s (lags {self.lags()})")

    def check_running(self) -> None:
        """InfraError with the tail of its log if no worker, or not the notifier, is running."""
        if self.workers and not any(w.alive for w in self.workers):
            w = self.workers[-1]
            raise InfraError(f"no worker is running; tail of {w.log}:\n{processes.tail(w.log)}")
        if self.notifier and not self.notifier.alive:
            n = self.notifier
            raise InfraError(f"the notifier is not running; tail of {n.log}:\n{processes.tail(n.log)}")

    def start_dashboard(self, timeout: float = 30.0) -> str:
        """Start `paylimit dashboard` on these workers' URLs and return its URL once it answers.

        On settings.dashboard_port (default 6067), or a free port when that is 0 or taken.
        """
        s = self.settings
        port = s.dashboard_port if s.dashboard_port and processes.port_is_free(s.dashboard_port) else processes.free_port()
        urls = ",".join(self.worker_url(w) for w in self.workers) or s.worker_urls
        self.dashboard = ServiceProcess("dashboard", "dashboard",
                                        s.model_copy(update={"dashboard_port": port, "worker_urls": urls}))
        self.dashboard.start()
        url = f"http://{s.web_host}:{port}/"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.dashboard.alive:
                break
            try:
                with urllib.request.urlopen(url, timeout=1):
                    return url
            except (URLError, OSError):
                time.sleep(0.2)
        log = self.dashboard.log
        raise InfraError(f"the dashboard did not answer on {url}; tail of {log}:\n{processes.tail(log)}")

    def services(self) -> list[ServiceProcess]:
        return [*self.workers, *([self.notifier] if self.notifier else []), *self.more_notifiers,
                *([self.dashboard] if self.dashboard else [])]

    def running(self) -> list[dict[str, Any]]:
        """Each service still running: name, pid and where to reach it (its URL, or its log)."""
        urls = {**{w.name: self.worker_url(w) for w in self.workers},
                **({"dashboard": f"http://{self.dashboard.settings.web_host}:{self.dashboard.settings.dashboard_port}/"}
                   if self.dashboard else {})}
        return [{"name": svc.name, "pid": svc.pid, "address": urls.get(svc.name, str(svc.log))}
                for svc in self.services() if svc.alive]

    def stop(self) -> None:
        if self._lag_readers is not None:
            for reader in self._lag_readers:
                reader.close()
            self._lag_readers = None
        processes.stop_all([svc.pid for svc in self.services() if svc.alive], timeout=20)
