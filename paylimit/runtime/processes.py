"""Starting, finding and stopping the local service processes, and picking free loopback ports."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import psutil


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def port_is_free(port: int) -> bool:
    """Can a server listen on this loopback port? (SO_REUSEADDR, as servers set it: connections
    of a process that just stopped, in TIME_WAIT, do not make the port taken.)"""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def spawn(argv: list[str], log: Path, cwd: Path | None = None, env: dict[str, str] | None = None) -> int:
    """Start a detached process (own session, so Ctrl-C in the terminal does not reach it)."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            cwd=cwd, env=env, start_new_session=True,
        )
    return proc.pid


def alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        proc = psutil.Process(pid)
        return proc.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def started_at(pid: int | None) -> float | None:
    """When the process started (None if it is gone): with the pid, it tells a process from a
    later one that got the same pid."""
    try:
        return psutil.Process(pid).create_time() if alive(pid) else None
    except psutil.NoSuchProcess:
        return None


def identity(pid: int | None) -> dict[str, Any] | None:
    """What tells a process from a later one that got the same pid (pids wrap around, and start
    again after a reboot), from /proc: the boot, its start time (clock ticks after the boot) and
    its program file. The program, not the command line: redis-server (and faust, with
    setproctitle) rewrite their command line as they run. None if the process is gone, a zombie,
    or not ours to look at."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        program = os.readlink(f"/proc/{pid}/exe").removesuffix(" (deleted)")  # its file replaced by an upgrade
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except (OSError, ValueError):
        return None
    fields = stat[stat.rindex(")") + 2:].split()  # the command in parentheses may hold spaces
    if fields[0] == "Z":
        return None
    return {"boot": boot, "start": int(fields[19]), "program": program}


def is_same(pid: int | None, recorded: dict[str, Any] | None) -> bool:
    """Is `pid` still the process whose `identity` was `recorded`? False without a record."""
    return bool(pid) and recorded is not None and identity(pid) == recorded


def stop(pid: int | None, timeout: float = 30.0) -> None:
    """SIGTERM, then SIGKILL after `timeout`; reaps the process if it is our child."""
    stop_all([pid], timeout)


def stop_all(pids: list[int | None], timeout: float = 30.0) -> None:
    """SIGTERM to every one at once (so they stop side by side), then SIGKILL to those still
    running after `timeout`; reaps those that are our children. The nodes of a Kafka cluster
    shut down together (one by one, the last ones would wait for a controller quorum that is gone)."""
    running = [pid for pid in pids if pid and alive(pid)]
    for pid in running:
        _signal(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(alive(pid) for pid in running):
        for pid in running:
            _reap(pid)
        time.sleep(0.1)
    for pid in running:
        if alive(pid):
            _signal(pid, signal.SIGKILL)
        while alive(pid):
            _reap(pid)
            time.sleep(0.05)
        _reap(pid)


def _signal(pid: int, sig: signal.Signals) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:  # gone meanwhile
        pass


def kill9(pid: int) -> None:
    """SIGKILL, and wait until every thread has exited: the main thread of a JVM is a zombie while
    others still close its files, its listening sockets among them."""
    os.kill(pid, signal.SIGKILL)
    while alive(pid) or _threads_exiting(pid):
        _reap(pid)
        time.sleep(0.02)
    _reap(pid)


def _threads_exiting(pid: int) -> bool:
    try:
        return len(os.listdir(f"/proc/{pid}/task")) > 1
    except OSError:  # gone (or no /proc)
        return False


def _reap(pid: int) -> None:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def tail(path: Path, lines: int = 15) -> str:
    if not path.exists():
        return ""
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
