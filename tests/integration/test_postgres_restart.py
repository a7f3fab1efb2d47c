"""PostgreSQL restarts mid-run — fast shutdown, then immediate (a crash of the server): the
consumers reconnect with backoff and carry on, the producer retries, and no task is lost.

The test runs a cluster of its own (initdb, pg_ctl) on a free port, as the `postgres` user
when run as root; it skips when the PostgreSQL binaries are missing (fails when CI=true).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from conftest import Env, postgres_schema_url

from scoter import Message
from scoter.states import State

PG_BIN = Path(os.environ.get("SCOTER_TEST_PG_BIN", "/usr/lib/postgresql/15/bin"))
AS_POSTGRES = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
TASKS = 300
BATCH = 10


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Cluster:
    """A throwaway PostgreSQL server in a directory of its own."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.data = root / "data"
        self.port = _free_port()
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, tool: str, *args: str) -> None:
        command = [*AS_POSTGRES, str(PG_BIN / tool), *args]
        done = subprocess.run(command, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, f"{tool} failed:\n{done.stdout}\n{done.stderr}"

    def init(self) -> None:
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "--no-sync")

    def start(self) -> None:
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1"
        log = str(self.root / "server.log")
        self._run("pg_ctl", "-D", str(self.data), "-l", log, "-o", options, "-w", "start")

    def stop(self, mode: str) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    if not (PG_BIN / "initdb").exists():
        if os.environ.get("CI") == "true":
            pytest.fail(f"no PostgreSQL binaries in {PG_BIN} (set SCOTER_TEST_PG_BIN)")
        pytest.skip(f"no PostgreSQL binaries in {PG_BIN} (set SCOTER_TEST_PG_BIN)")
    root = Path(tempfile.mkdtemp(prefix="scoter-pg-"))  # tmp_path is private to root
    if AS_POSTGRES:
        shutil.chown(root, "postgres")
    server = Cluster(root)
    server.init()
    server.start()
    yield server
    server.stop("immediate")
    shutil.rmtree(root, ignore_errors=True)


class Producer(threading.Thread):
    """Enqueues TASKS tasks with known ids in small batches, retrying through outages."""

    def __init__(self, env: Env, ids: list[str]) -> None:
        super().__init__(daemon=True)
        self.env = env
        self.ids = ids
        self.retries = 0

    def run(self) -> None:
        for start in range(0, len(self.ids), BATCH):
            batch = [Message("sleepy", (0.05,), id=i) for i in self.ids[start : start + BATCH]]
            while True:
                try:
                    self.env.app.enqueue_many(batch)  # a retried batch is a no-op where stored
                    break
                except psycopg.OperationalError:
                    self.retries += 1
                    time.sleep(0.1)
            time.sleep(0.1)


def _done(env: Env) -> int:
    try:
        return env.app.storage.counts().get(("default", State.DONE), 0)
    except psycopg.OperationalError:
        return 0  # the test's own connections are down too


@pytest.mark.parametrize("mode", ["fast", "immediate"])
def test_consumers_ride_out_a_restart(
    cluster: Cluster, mode: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = Env(tmp_path, monkeypatch, postgres_schema_url(cluster.url))
    try:
        consumers = [env.start("-w", "4", "--drain-timeout", "5") for _ in range(2)]
        ids = [f"t{i:03}" for i in range(TASKS)]
        producer = Producer(env, ids)
        producer.start()
        env.wait_for(lambda: _done(env) >= 50, 20, "work under way")

        cluster.stop(mode)
        time.sleep(1.0)
        cluster.start()

        producer.join(30)
        assert not producer.is_alive()
        env.wait_for(lambda: _done(env) == TASKS, 30, "every task")
        assert {r[0] for r in env.runs("finished")} == set(ids)
        assert [c.proc.poll() for c in consumers] == [None, None], "consumers stayed up"
        for consumer in consumers:
            consumer.send(signal.SIGTERM)
        assert [c.wait(timeout=15) for c in consumers] == [0, 0]
        assert any("storage unavailable" in c.log() for c in consumers), "the outage was seen"
    finally:
        env.close()
