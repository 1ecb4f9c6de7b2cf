"""A real Redis server (Debian's `redis-server`) on a free loopback port with AOF persistence, fsynced on every
write (`appendfsync always`): Redis holds the record of delivered notifications, and a recorded one survives
a crash of Redis or of its machine. With a password (`requirepass`), a client must give it: the URL
carries it (`redis://:PASSWORD@host:port/0`)."""

from __future__ import annotations

import shutil
from pathlib import Path

from paylimit.errors import InfraError
from paylimit.runtime import processes


def start(root: Path, port: int | None = None, password: str | None = None) -> tuple[int, str]:
    """Start redis-server with its data under `root`; returns (pid, url). The caller waits for it."""
    binary = shutil.which("redis-server")
    if not binary:
        raise InfraError("redis-server is not installed: apt-get install -y redis-server (or set PAYLIMIT_REDIS_URL)")
    port = port or processes.free_port()
    if not processes.port_is_free(port):
        raise InfraError(f"port {port} of the local Redis server is taken by another process")
    root.mkdir(parents=True, exist_ok=True)
    argv = [binary, "--bind", "127.0.0.1", "--port", str(port), "--dir", str(root.resolve()),
            "--appendonly", "yes", "--appendfsync", "always", "--save", "", "--daemonize", "no",
            "--protected-mode", "yes"]
    if password:
        # from a config file only its owner reads, not the command line (which any local user's `ps` shows)
        conf = root / "auth.conf"
        conf.touch(mode=0o600)
        conf.write_text(f"requirepass {password}\n")
        argv.insert(1, str(conf.resolve()))
    pid = processes.spawn(argv, root / "redis.log")
    return pid, f"redis://:{password}@127.0.0.1:{port}/0" if password else f"redis://127.0.0.1:{port}/0"
