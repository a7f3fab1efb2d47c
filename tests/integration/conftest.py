"""Real consumer processes for integration tests: start, signal, wait, read their logs."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.parse
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from scoter import Scoter
from scoter.states import State

HERE = Path(__file__).parent
POSTGRES_URL = os.environ.get(
    "SCOTER_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
REDIS_URL = os.environ.get("SCOTER_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
BANNER = "scoter.consumer: consumer "
"""How the line a consumer logs when it starts begins (after the time and level)."""


@dataclass
class Worker:
    proc: subprocess.Popen[bytes]
    log_path: Path

    @property
    def pid(self) -> int:
        return self.proc.pid

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def send(self, signum: int) -> None:
        os.kill(self.proc.pid, signum)

    def wait(self, timeout: float) -> int:
        return self.proc.wait(timeout=timeout)

    def starts(self) -> int:
        """How many times a consumer started in this process: its banners."""
        return self.log().count(BANNER)

    def wait_until_ready(self, timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        while BANNER not in self.log():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"consumer did not start:\n{self.log()}")
            time.sleep(0.02)


class Env:
    """One test's storage, side-effect file, producer app and consumer processes."""

    app_path = "integration_app:app"
    """What `scoter worker` runs; a module that imports integration_app may add tasks."""

    def __init__(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, url: str | None = None
    ) -> None:
        self.tmp = tmp_path
        self.url = url or f"sqlite:///{tmp_path / 'queue.db'}"
        self.runs_path = tmp_path / "runs.db"
        monkeypatch.setenv("SCOTER_URL", self.url)
        monkeypatch.setenv("SCOTER_TEST_RUNS", str(self.runs_path))
        monkeypatch.syspath_prepend(str(HERE))
        import integration_app

        self.module = integration_app
        self.app: Scoter = integration_app.app
        self.app._storage = None
        self.app._url = self.url
        self.workers: list[Worker] = []

    def start(self, *args: str, ready: bool = True, url: str | None = None) -> Worker:
        """A `scoter worker` process on this test's storage, or on `url` (e.g. a proxy's)."""
        log_path = self.tmp / f"worker-{len(self.workers)}.log"
        env = {**os.environ, "PYTHONPATH": str(HERE), "PYTHONUNBUFFERED": "1"}
        if url is not None:
            env["SCOTER_URL"] = url
        command = [sys.executable, "-m", "scoter", "worker", self.app_path, *args]
        with open(log_path, "wb") as log:
            proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
        worker = Worker(proc, log_path)
        self.workers.append(worker)
        if ready:
            worker.wait_until_ready()
        return worker

    def runs(self, event: str | None = None) -> list[tuple[str, str, int, int, float]]:
        if not self.runs_path.exists():
            return []
        with sqlite3.connect(self.runs_path, timeout=30) as db:
            try:
                rows = db.execute("SELECT task, event, pid, attempt, at FROM runs ORDER BY at")
                found = rows.fetchall()
            except sqlite3.OperationalError:
                return []
        return [r for r in found if event is None or r[1] == event]

    def requeues(self) -> list[str]:
        """Ids the SIGNAL_INTERRUPTED receiver of integration_app enqueued again."""
        with sqlite3.connect(self.runs_path, timeout=30) as db:
            try:
                return [r[0] for r in db.execute("SELECT task FROM requeues ORDER BY at")]
            except sqlite3.OperationalError:
                return []

    def wait_for(self, condition: Callable[[], object], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                logs = "\n".join(f"--- {w.log_path.name}\n{w.log()}" for w in self.workers)
                raise AssertionError(f"timed out waiting for {what}\n{logs}")
            time.sleep(0.02)

    def state(self, task_id: str) -> State | None:
        info = self.app.storage.get(task_id)
        return None if info is None else info.state

    def close(self) -> None:
        for worker in self.workers:
            if worker.proc.poll() is None:
                worker.proc.send_signal(signal.SIGKILL)
                worker.proc.wait()
        self.app.storage.close()


def postgres_schema_url(base: str = POSTGRES_URL) -> str:
    """`base` naming a fresh schema; skips when the server is unreachable (fails when CI=true)."""
    import psycopg

    try:
        psycopg.connect(base, connect_timeout=3).close()
    except psycopg.OperationalError as exc:
        if os.environ.get("CI") == "true":
            raise
        pytest.skip(f"PostgreSQL at {base} is unreachable: {exc}")
    return f"{base}{'&' if '?' in base else '?'}schema=t{uuid.uuid4().hex[:20]}"


def redis_prefix_url(base: str = REDIS_URL) -> str:
    """`base` naming a fresh key prefix; skips when the server is down (fails when CI=true)."""
    import redis

    client = redis.Redis.from_url(base, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.ConnectionError as exc:
        if os.environ.get("CI") == "true":
            raise
        pytest.skip(f"no Redis server at {base} (set SCOTER_TEST_REDIS_URL): {exc}")
    finally:
        client.close()
    return f"{base}{'&' if '?' in base else '?'}prefix=t{uuid.uuid4().hex}"


def drop_postgres_schema(url: str) -> None:
    import psycopg

    parts = urllib.parse.urlsplit(url)
    query = urllib.parse.parse_qsl(parts.query)
    schema = dict(query)["schema"]
    libpq = urllib.parse.urlencode([(k, v) for k, v in query if k != "schema"])
    with psycopg.connect(parts._replace(query=libpq).geturl(), autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


@pytest.fixture
def env(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Env]:
    """SQLite; `@pytest.mark.parametrize("env", ["sqlite", "postgres"], indirect=True)` runs a
    test on each backend (PostgreSQL: a fresh schema on $SCOTER_TEST_POSTGRES_URL)."""
    postgres = getattr(request, "param", "sqlite") == "postgres"
    the_env = Env(tmp_path, monkeypatch, postgres_schema_url() if postgres else None)
    yield the_env
    the_env.close()
    if postgres:
        drop_postgres_schema(the_env.url)
