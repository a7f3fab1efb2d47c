"""The SIGTERM/SIGKILL experiment of docs/from-huey.md: a fleet of consumers of one unchanged
Huey app, one of them SIGTERMed or SIGKILLed (alternately) while it runs a task and replaced
at every round, as deploys and crashes do; then the survivors run until the work stops
moving. Lost: tasks enqueued that never finished."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).parent
ALIAS = "import scoter.huey.alias as a; a.install(); "
PRODUCE = "import huey_experiment_app as app; [app.work(i) for i in range({tasks})]"
BUSY_WAIT_S = 5.0
"""How long a round waits for its victim to be running a task, so that every kill lands on
work in progress (what a deploy or a crash hits)."""
SETTLE_S = 4.0
"""The work counts as stopped when no task finished for this long (with consumers idle)."""


@dataclass
class Outcome:
    system: str
    tasks: int
    finished: int
    runs: int
    kills: int
    seconds: float

    @property
    def lost(self) -> int:
        return self.tasks - self.finished

    @property
    def repeated(self) -> int:
        return self.runs - self.finished


def consumer_command(system: str) -> list[str]:
    flags = ["huey_experiment_app.huey", "-w", "2", "-t", "2", "-q"]
    if system == "huey":
        return [str(Path(sys.executable).parent / "huey_consumer"), *flags]
    return [sys.executable, "-m", "scoter", "huey-consumer", *flags]


def finished(runs: Path) -> tuple[int, int]:
    """(distinct tasks finished, rows written)."""
    if not runs.exists():
        return 0, 0
    with sqlite3.connect(runs, timeout=30) as db:
        try:
            row = db.execute("SELECT COUNT(DISTINCT n), COUNT(*) FROM done").fetchone()
        except sqlite3.OperationalError:
            return 0, 0
    return int(row[0]), int(row[1])


def run(system: str, tmp: Path, tasks: int, consumers: int, rounds: int, every: float,
        deadline_s: float = 120.0) -> Outcome:  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(HERE), "HUEY_EXPERIMENT_DB": str(tmp / "queue.db"),
           "HUEY_EXPERIMENT_RUNS": str(tmp / "runs.db"), "SCOTER_LEASE": "2"}  # fmt: skip
    produce = (ALIAS if system == "scoter" else "") + PRODUCE.format(tasks=tasks)
    subprocess.run([sys.executable, "-c", produce], env=env, check=True, cwd=tmp)
    started = time.monotonic()
    fleet = [_start(system, env, tmp) for _ in range(consumers)]
    killed: list[subprocess.Popen[bytes]] = []
    try:
        for turn in range(rounds):
            time.sleep(every)
            victim = fleet.pop(0)
            _until_busy(tmp / "runs.db", victim.pid, time.monotonic() + BUSY_WAIT_S)
            victim.send_signal(signal.SIGTERM if turn % 2 == 0 else signal.SIGKILL)
            killed.append(victim)
            fleet.append(_start(system, env, tmp))
        _until_settled(tmp / "runs.db", tasks, started + deadline_s)
    finally:
        for proc in fleet + killed:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
    done, runs = finished(tmp / "runs.db")
    return Outcome(system, tasks, done, runs, rounds, round(time.monotonic() - started, 1))


def _start(system: str, env: dict[str, str], tmp: Path) -> subprocess.Popen[bytes]:
    log = open(tmp / f"{system}-{time.monotonic_ns()}.log", "wb")  # noqa: SIM115 - the child's
    return subprocess.Popen(consumer_command(system), env=env, cwd=tmp, stdout=log,
                            stderr=subprocess.STDOUT)  # fmt: skip


def _until_busy(runs: Path, pid: int, deadline: float) -> None:
    """Wait until consumer `pid` runs a task (it started more than it finished)."""
    while time.monotonic() < deadline:
        with sqlite3.connect(runs, timeout=30) as db:
            if _rows(db, "started", pid) > _rows(db, "done", pid):
                return
        time.sleep(0.02)


def _rows(db: sqlite3.Connection, table: str, pid: int) -> int:
    try:
        return int(db.execute(f"SELECT COUNT(*) FROM {table} WHERE pid = ?", (pid,)).fetchone()[0])
    except sqlite3.OperationalError:  # no task has written it yet
        return 0


def _until_settled(runs: Path, tasks: int, deadline: float) -> None:
    last, since = -1, time.monotonic()
    while time.monotonic() < deadline:
        done, _ = finished(runs)
        if done >= tasks:
            return
        if done != last:
            last, since = done, time.monotonic()
        elif time.monotonic() - since > SETTLE_S:
            return
        time.sleep(0.1)
