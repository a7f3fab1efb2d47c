"""Health of a consumer: liveness and readiness over HTTP, and the probe `scoter check` makes.

- **live** (`GET /livez`, 200 or 503): the heartbeat thread runs and its last renewal round
  ended less than its interval plus LIVENESS_SLACK_S ago. A storage outage does not make a
  consumer dead (its heartbeat fails and goes on; a restart would not help), a hung heartbeat
  does — then its leases expire and another consumer takes its tasks.
- **ready** (`GET /readyz`, 200 or 503): the consumer runs, is not stopping, and its storage
  answers a read (asked at most once every READY_CACHE_S, however often probed).

The server is the standard library's, on a daemon thread of its own: it never touches a task
and cannot delay one.
"""

from __future__ import annotations

import http.server
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import TYPE_CHECKING

from scoter.config import redact
from scoter.display import printable

if TYPE_CHECKING:
    from scoter.consumer.supervisor import Consumer
    from scoter.storage.base import Storage

LIVENESS_SLACK_S = 60.0
"""How long past its interval a heartbeat round may take before the consumer counts as hung:
more than a storage call's deadline (10 s; SQLite waits up to 30 s for its lock)."""
READY_CACHE_S = 1.0
PROBE_ID = "scoter-health-probe"
"""The task id the storage probe reads (by key: cheap on every backend; none has it)."""
ASK_TIMEOUT_S = 5.0

Check = Callable[[], "tuple[bool, str]"]


def probe(storage: Storage) -> str | None:
    """None when the storage answers a read, else why not, in one line."""
    try:
        storage.get(PROBE_ID)
    except Exception as exc:
        return f"storage {redact(storage.url)} does not answer: {printable(_one_line(exc))}"
    return None


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


class Health:
    """Liveness and readiness of one consumer."""

    def __init__(self, consumer: Consumer) -> None:
        self.consumer = consumer
        self._lock = threading.Lock()
        self._probed_at = -READY_CACHE_S
        self._problem: str | None = None

    def live(self) -> tuple[bool, str]:
        heartbeat = self.consumer.heartbeat
        if self.consumer.started_at is None or not heartbeat.started:  # alive, not ready yet
            return True, "starting"
        if not heartbeat.alive:
            return False, "the heartbeat thread has stopped"
        since = time.monotonic() - heartbeat.ticked_at
        if since > heartbeat.interval + LIVENESS_SLACK_S:
            return False, f"the heartbeat has not ended a round for {since:.0f} s"
        return True, f"heartbeat ended a round {since:.1f} s ago"

    def ready(self) -> tuple[bool, str]:
        if self.consumer.started_at is None:
            return False, "starting"
        if self.consumer.stopping:
            return False, f"stopping ({self.consumer.stop_reason})"
        problem = self._storage_problem()
        return (False, problem) if problem else (True, "storage answers")

    def _storage_problem(self) -> str | None:
        with self._lock:  # one probe at a time, shared by every request of its second
            if time.monotonic() - self._probed_at >= READY_CACHE_S:
                self._problem = probe(self.consumer.storage)
                self._probed_at = time.monotonic()
            return self._problem

    def serve(self, host: str, port: int) -> tuple[str, int]:
        """Answer /livez and /readyz on host:port (0: any free port) from a daemon thread;
        returns the address listened on."""
        return serve({"/livez": self.live, "/readyz": self.ready}, host, port)


def serve(routes: dict[str, Check], host: str, port: int) -> tuple[str, int]:
    """A plain-text HTTP server of `routes` (path → check: 200 when it passes, else 503)."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            check = routes.get(self.path.partition("?")[0])
            ok, text = check() if check else (False, f"unknown path; try {', '.join(routes)}")
            status = 200 if ok else 404 if check is None else 503
            body = f"{'ok' if ok else 'unavailable'}: {text}\n".encode()
            self.send_response(status)
            self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            """Probes are not logged: one every few seconds would drown the task lines."""

    server = http.server.ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="scoter-health", daemon=True).start()
    address = server.server_address
    return str(address[0]), int(address[1])


def ask_worker(address: str) -> str | None:
    """None when the worker at `address` (HOST:PORT of `--health-port`) is live and ready,
    else why not, in one line."""
    base = address if "://" in address else f"http://{address}"
    for path in ("/livez", "/readyz"):
        try:
            with urllib.request.urlopen(base + path, timeout=ASK_TIMEOUT_S):
                pass
        except urllib.error.HTTPError as exc:
            said = exc.read().decode(errors="replace").strip()
            return f"worker at {address} is not {path[1:-1]}: {printable(said)}"
        except (OSError, ValueError) as exc:
            return f"cannot reach the worker at {address}: {printable(_one_line(exc))}"
    return None
