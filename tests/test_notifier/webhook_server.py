"""A real webhook for the tests: an HTTP/1.1 server on a loopback socket whose answers a test
chooses down to the raw bytes (a garbage status line, a redirect, a 400, a slow or dripping reply).

Each connection carries one request. The server records each, with the alerts of the other
requests still in flight when it came (their clients had not hung up: checked on their sockets
at that moment, not from timestamps a loaded machine could skew), so a test sees how many POSTs
of an alert there were and whether two were ever in flight at once.

By hand: `python -m tests.test_notifier.webhook_server MODE [PORT]`, MODE one of `ok`, `garbage`,
`302`, `400`, `503`, `slow:SECONDS`; it prints each request it gets.
"""

from __future__ import annotations

import json
import select
import socket
import socketserver
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Callable


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]  # names in lower case
    body: bytes
    concurrent: list[str | None] = field(default_factory=list)  # alert ids of the requests in flight when it came

    @property
    def alert_id(self) -> str | None:
        try:
            return str(json.loads(self.body)["alert_id"])
        except (ValueError, KeyError, TypeError):
            return None

    @property
    def user_id(self) -> str | None:
        try:
            return str(json.loads(self.body)["user_id"])
        except (ValueError, KeyError, TypeError):
            return None


@dataclass(frozen=True)
class Answer:
    raw: bytes  # what is sent back, byte for byte
    delay: float = 0.0  # seconds before the first byte (the client may hang up meanwhile)
    drip: float = 0.0  # seconds between single bytes (0: all at once)


def status(code: int, *headers: str, reason: str = "Whatever") -> Answer:
    head = "".join(f"{h}\r\n" for h in headers)
    return Answer(f"HTTP/1.1 {code} {reason}\r\n{head}Content-Length: 0\r\nConnection: close\r\n\r\n".encode())


OK = status(200, reason="OK")
GARBAGE = Answer(b"SMTP ready, not HTTP at all\r\n\r\n")


class WebhookServer:
    """`with WebhookServer(answer) as hook:` serves on `hook.url()` until the block ends.
    `answer` is an Answer for every request, or a function of the request."""

    def __init__(self, answer: Answer | Callable[[Request], Answer] = OK, port: int = 0) -> None:
        self.answer = answer
        self.requests: list[Request] = []
        self._lock = threading.Lock()
        self._open: dict[int, tuple[Request, socket.socket]] = {}  # by id(request)
        server = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                server._handle(self.request)

        socketserver.ThreadingTCPServer.allow_reuse_address = True
        self._tcp = socketserver.ThreadingTCPServer(("127.0.0.1", port), Handler)
        self._tcp.daemon_threads = True
        self.port = self._tcp.server_address[1]
        self._thread = threading.Thread(target=self._tcp.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def __enter__(self) -> "WebhookServer":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._tcp.shutdown()
        self._tcp.server_close()

    def received(self, method: str | None = "POST") -> list[Request]:
        with self._lock:
            return [r for r in self.requests if method is None or r.method == method]

    def _handle(self, sock: socket.socket) -> None:
        sock.settimeout(30)
        reader = sock.makefile("rb")
        line = reader.readline().decode("latin-1").split()
        if len(line) < 2:
            return
        headers: dict[str, str] = {}
        while (h := reader.readline().decode("latin-1").strip()):
            name, _, value = h.partition(":")
            headers[name.strip().lower()] = value.strip()
        body = reader.read(int(headers.get("content-length", "0")))
        req = Request(line[0], line[1], headers, body)
        with self._lock:
            req.concurrent = [other.alert_id for other, s in self._open.values() if not _hung_up(s)]
            self.requests.append(req)
            self._open[id(req)] = (req, sock)
        answer = self.answer(req) if callable(self.answer) else self.answer
        try:
            if not _client_still_there(sock, answer.delay):
                return
            if answer.drip:
                for i in range(len(answer.raw)):
                    sock.sendall(answer.raw[i:i + 1])
                    if not _client_still_there(sock, answer.drip):
                        return
            else:
                sock.sendall(answer.raw)
            sock.shutdown(socket.SHUT_WR)
            _client_still_there(sock, 5)  # until the client has read it and hung up
        except OSError:
            pass  # the client hung up first
        finally:
            with self._lock:
                del self._open[id(req)]


def _hung_up(sock: socket.socket) -> bool:
    """Whether the client has closed its end (the socket reads as ended), without consuming anything."""
    try:
        return bool(select.select([sock], [], [], 0)[0]) and sock.recv(1, socket.MSG_PEEK) == b""
    except OSError:
        return True


def _client_still_there(sock: socket.socket, seconds: float) -> bool:
    """Wait `seconds`; False as soon as the client closes its end of the connection."""
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        if select.select([sock], [], [], left)[0]:
            try:
                if not sock.recv(4096):
                    return False
            except OSError:
                return False
    return True


def _mode(name: str) -> Answer:
    if name == "ok":
        return OK
    if name == "garbage":
        return GARBAGE
    if name == "302":
        return status(302, "Location: /elsewhere", reason="Found")
    if name.startswith("slow:"):
        return Answer(OK.raw, delay=float(name.split(":", 1)[1]))
    return status(int(name))


if __name__ == "__main__":
    mode = _mode(sys.argv[1] if len(sys.argv) > 1 else "ok")

    def answer(req: Request) -> Answer:
        print(f"{time.strftime('%H:%M:%S')} {req.method} {req.path} alert {req.alert_id} "
              f"Idempotency-Key {req.headers.get('idempotency-key')}", flush=True)
        return OK if req.method != "POST" else mode

    with WebhookServer(answer, port=int(sys.argv[2]) if len(sys.argv) > 2 else 0) as hook:
        print(f"webhook on {hook.url()}", flush=True)
        threading.Event().wait()
