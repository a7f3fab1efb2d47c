"""Redis stops (SIGTERM or SIGKILL) and comes back mid-run, with a producer and two consumers.

The server keeps an append-only file fsynced on every write (`appendfsync always`), so every
write it acknowledged survives even SIGKILL: acknowledged tasks stay done, every enqueued task
finishes, and the consumers ride out the outage without crashing or spinning.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from conftest import Env, Worker
from redis.backoff import NoBackoff
from redis.retry import Retry

from scoter import EnqueueError
from scoter.states import State

REDIS_SERVER = shutil.which("redis-server")
TASKS = 250
OUTAGE_S = 2.0
pytestmark = pytest.mark.skipif(
    REDIS_SERVER is None and os.environ.get("CI") != "true", reason="redis-server not installed"
)


class RedisServer:
    """A redis-server of this test's own, on a free loopback port, its files in `directory`."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.port = _free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        command = [
            str(REDIS_SERVER), "--port", str(self.port), "--bind", "127.0.0.1",
            "--dir", str(self.directory), "--appendonly", "yes", "--appendfsync", "always",
            "--save", "", "--logfile", "redis.log",
        ]  # fmt: skip
        self.proc = subprocess.Popen(command, stdout=subprocess.DEVNULL)
        client = redis.Redis(port=self.port, retry=Retry(NoBackoff(), 0))
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()  # LOADING (BusyLoadingError) while the AOF is read back
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.02)
        client.close()

    def stop(self, signum: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(signum)
        self.proc.wait(10)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.stop(signal.SIGKILL)


class Producer(threading.Thread):
    """Enqueues tasks one by one; an enqueue rides out the outage itself (enqueue_timeout), and
    one that gives up is retried with the same id, as its EnqueueError says to."""

    def __init__(self, env: Env) -> None:
        super().__init__(daemon=True)
        self.env = env
        self.ids: list[str] = []
        self.longest = 0.0
        """The longest enqueue call, in seconds: one that rode out the outage."""

    def run(self) -> None:
        for _ in range(TASKS):
            message = self.env.module.sleepy.s(0.02)
            while True:
                asked = time.monotonic()
                try:
                    self.env.app.enqueue_message(message)
                    break
                except EnqueueError:
                    time.sleep(0.05)
                finally:
                    self.longest = max(self.longest, time.monotonic() - asked)
            self.ids.append(message.id)
            time.sleep(0.01)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _cpu_seconds(worker: Worker) -> float:
    """User + system CPU time of the consumer process, all threads."""
    fields = Path(f"/proc/{worker.pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _done(env: Env) -> set[str]:
    return {t.id for t in env.app.storage.list_tasks(State.DONE, limit=10 * TASKS)}


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RedisServer]:
    the_server = RedisServer(tmp_path)
    the_server.start()
    yield the_server
    the_server.kill()


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "sigkill"])
def test_tasks_and_consumers_survive_a_redis_restart(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, server: RedisServer, signum: int
) -> None:
    env = Env(tmp_path, monkeypatch, f"{server.url}?prefix=restart")
    try:
        consumers = [env.start("-w", "4", "--lease", "10") for _ in range(2)]
        producer = Producer(env)
        producer.start()
        env.wait_for(lambda: len(_done(env)) >= 60, 20, "tasks done before the outage")

        acknowledged = _done(env)
        server.stop(signum)
        cpu = [_cpu_seconds(c) for c in consumers]
        lines = [c.log().count("\n") for c in consumers]
        time.sleep(OUTAGE_S)
        cpu = [_cpu_seconds(c) - before for c, before in zip(consumers, cpu, strict=True)]
        lines = [c.log().count("\n") - n for c, n in zip(consumers, lines, strict=True)]
        server.start()

        producer.join(30)
        assert not producer.is_alive(), "the producer did not get its tasks in"
        assert producer.longest > OUTAGE_S / 2, "the outage did not reach the producer"
        env.wait_for(lambda: _done(env) >= set(producer.ids), 30, "every task")

        assert acknowledged <= _done(env), "tasks acknowledged before the stop were lost"
        assert all(c.proc.poll() is None for c in consumers), "a consumer died"
        assert max(cpu) < OUTAGE_S * 0.25, f"consumers spun during the outage: {cpu} s of CPU"
        assert max(lines) <= 12, f"consumers logged {lines} lines during the outage"
        assert all("storage unavailable" in c.log() for c in consumers)
        for consumer in consumers:
            consumer.send(signal.SIGTERM)
        assert [c.wait(timeout=15) for c in consumers] == [0, 0]
    finally:
        env.close()
