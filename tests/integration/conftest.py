"""Real consumer processes for integration tests: start, signal, wait, read their logs."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from scoter import Scoter
from scoter.states import State

HERE = Path(__file__).parent


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

    def wait_until_ready(self, timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        while "consumer " not in self.log():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"consumer did not start:\n{self.log()}")
            time.sleep(0.02)


class Env:
    """One test's storage, side-effect file, producer app and consumer processes."""

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

    def start(self, *args: str, ready: bool = True) -> Worker:
        log_path = self.tmp / f"worker-{len(self.workers)}.log"
        env = {**os.environ, "PYTHONPATH": str(HERE), "PYTHONUNBUFFERED": "1"}
        command = [sys.executable, "-m", "scoter", "worker", "integration_app:app", *args]
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


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Env]:
    the_env = Env(tmp_path, monkeypatch)
    yield the_env
    the_env.close()
