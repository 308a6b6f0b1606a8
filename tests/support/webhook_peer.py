"""A practice system's webhook on 127.0.0.1 for tests: a real HTTP server in a thread that
records every request and keeps each charge once by its Idempotency-Key, as a real one does.

    with WebhookPeer() as peer:
        peer.fail_first(2)          # each key: 500 the first two times
        peer.slow_first(1, 1.0)     # then: take it, but answer after 1 s (a lost answer)
        peer.twice = True           # every request arrives twice and is answered twice
        ... peer.url, peer.requests, peer.accepted, peer.keys_seen()
"""

import json
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Received:
    """One request as it reached the peer."""

    key: str | None
    body: dict | None
    content_type: str | None
    path: str
    answered: int  # the status it got


class _Handler(BaseHTTPRequestHandler):
    server: "_Server"

    def do_POST(self):  # noqa: N802 - http.server's naming
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        peer = self.server.peer
        copies = 2 if peer.twice else 1
        for _ in range(copies):  # a duplicate delivery: a proxy that replayed the request
            status, delay = peer.take(self.headers.get("Idempotency-Key"), body,
                                      self.headers.get("Content-Type"), self.path)
        if delay:
            time.sleep(delay)
        try:
            for _ in range(copies):
                self._answer(status)
        except OSError:
            pass  # the client gave up waiting: the classic lost answer

    def _answer(self, status: int) -> None:
        payload = b'{"ok": true}' if status < 300 else b'{"error": "failed"}'
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)
        self.wfile.flush()

    def log_message(self, format, *args):  # noqa: A002 - the base class's signature
        """Quiet: the test asserts on what was recorded."""


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False  # a handler still sleeping must not hold the test up

    def __init__(self, peer: "WebhookPeer"):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.peer = peer


class WebhookPeer:
    """The practice system's end of the webhook, with failures on demand."""

    def __init__(self):
        self.requests: list[Received] = []
        self.accepted: dict[str, dict] = {}  # key → body, the first time it was taken
        self.duplicates = 0  # requests for a key already taken (dropped, as a real one does)
        self.twice = False
        self._fail_first = 0
        self._slow_first = 0
        self._slow_s = 0.0
        self._seen: dict[str | None, int] = {}
        self._lock = threading.Lock()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def fail_first(self, times: int) -> None:
        """Answer 500 (without taking the charge) the first `times` requests of each key."""
        self._fail_first = times

    def slow_first(self, times: int, seconds: float) -> None:
        """After the failures, the next `times` requests of each key are taken but answered
        only after `seconds` (longer than the client waits: it arrived, nobody heard)."""
        self._slow_first, self._slow_s = times, seconds

    def take(self, key, body, content_type, path) -> tuple[int, float]:
        """Record one request; the status to answer and how long to wait first."""
        with self._lock:
            n = self._seen[key] = self._seen.get(key, 0) + 1
            if n <= self._fail_first or not key:
                status, delay = 500, 0.0
            else:
                status = 200
                delay = self._slow_s if n <= self._fail_first + self._slow_first else 0.0
                if key in self.accepted:
                    self.duplicates += 1
                else:
                    self.accepted[key] = body
            self.requests.append(Received(key, body, content_type, path, status))
            return status, delay

    def keys_seen(self) -> list[str | None]:
        """Every request's Idempotency-Key, in arrival order (repeats included)."""
        with self._lock:
            return [r.key for r in self.requests]

    @property
    def url(self) -> str:
        """The webhook's address."""
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/charges"

    def start(self) -> "WebhookPeer":
        """Listen on a free port of 127.0.0.1 in a background thread."""
        self._server = _Server(self)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop listening."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> "WebhookPeer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
