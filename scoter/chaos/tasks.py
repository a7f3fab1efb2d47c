"""The chaos tasks, run in the consumer processes, and the records of their runs.

Each run of a task writes a row to a SQLite file of its process's own (runs-<pid>.db in the
directory $SCOTER_CHAOS_RUNS, so that no process ever waits for another's lock): task id,
attempt, pid, parent pid, its lease's expiry as claimed, start, end and how it ended (NULL
while running, or when its process died first).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scoter.app import Scoter
from scoter.context import TaskContext
from scoter.exceptions import Interrupt, LeaseLost

ENV_RUNS = "SCOTER_CHAOS_RUNS"
"""The directory where every run records itself, a file per process; set by `run_chaos`."""
RUNS_TABLE = (
    "CREATE TABLE IF NOT EXISTS runs (id INTEGER PRIMARY KEY, task TEXT NOT NULL, attempt "
    "INTEGER, pid INTEGER, ppid INTEGER, expires REAL, started REAL, ended REAL, outcome TEXT)"
)

QUEUE = "chaos"
STEP_S = 0.1
"""How long a checkpointing task works between two checkpoints."""
BUDGET = 10_000
"""max_crashes and max_interruptions of the chaos tasks: a chaos run never exhausts them, so
any dead task is a finding."""

COMPLETED = "completed"
INTERRUPTED = "interrupted"
LEASE_LOST = "lease lost"

app = Scoter("chaos", default_queue=QUEUE)
"""The consumers' app; its storage URL comes from $SCOTER_URL, which `run_chaos` sets."""


def length(key: int) -> float:
    """Seconds task `key` works: mostly short, a quarter up to 1.5 s, one in twenty up to 4 s."""
    rng = random.Random(key)
    kind = rng.random()
    if kind < 0.70:
        return rng.uniform(0.02, 0.3)
    if kind < 0.95:
        return rng.uniform(0.3, 1.5)
    return rng.uniform(1.5, 4.0)


def steps(key: int) -> int:
    return max(1, round(length(key) / STEP_S))


def _runs_db() -> sqlite3.Connection:
    """This process's own runs file. One shared file would let a SIGSTOPped consumer holding
    its write lock stall every task of the fleet (and block an asyncio consumer's loop)."""
    path = Path(os.environ[ENV_RUNS]) / f"runs-{os.getpid()}.db"
    with _runs_created_lock:  # journal_mode=WAL takes no busy timeout: one thread sets it
        if os.getpid() not in _runs_created:
            with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as db:
                db.execute("PRAGMA journal_mode=WAL")
                db.execute(RUNS_TABLE)
            _runs_created.add(os.getpid())
    db = sqlite3.connect(path, timeout=60.0, isolation_level=None)
    db.execute("PRAGMA synchronous=NORMAL")  # a commit survives the process's death
    return db


_runs_created: set[int] = set()
"""The pids whose runs file this process has created (a forked child has its own)."""
_runs_created_lock = threading.Lock()


def _record_start(ctx: TaskContext) -> int:
    row = (ctx.task_id, ctx.attempt, os.getpid(), os.getppid(), ctx.lease.expires, time.time())
    with contextlib.closing(_runs_db()) as db:
        cursor = db.execute(
            "INSERT INTO runs (task, attempt, pid, ppid, expires, started) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            row,
        )
        return int(cursor.lastrowid or 0)


def _record_end(run_id: int, outcome: str) -> None:
    ended = time.time()
    with contextlib.closing(_runs_db()) as db:
        db.execute("UPDATE runs SET ended = ?, outcome = ? WHERE id = ?", (ended, outcome, run_id))


def _outcome_of(exc: BaseException) -> str:
    if isinstance(exc, Interrupt):
        return INTERRUPTED
    if isinstance(exc, LeaseLost):
        return LEASE_LOST
    return f"raised {type(exc).__name__}"


@contextlib.contextmanager
def recorded(ctx: TaskContext) -> Iterator[None]:
    """Record this run: its start now, its end and outcome when the block exits."""
    run_id = _record_start(ctx)
    try:
        yield
    except BaseException as exc:  # CancelledError too (asyncio executor)
        _record_end(run_id, _outcome_of(exc))
        raise
    _record_end(run_id, COMPLETED)


def plain(key: int, ctx: TaskContext) -> int:
    """Not cooperative: works its whole length whatever is asked of it."""
    with recorded(ctx):
        time.sleep(length(key))
    return key


def stepwise(key: int, ctx: TaskContext) -> int:
    """Works in steps with `ctx.resume`: checkpoints each, hands itself back when asked."""
    with recorded(ctx):
        for _ in ctx.resume(range(steps(key))):
            time.sleep(STEP_S)
    return key


def careful(key: int, ctx: TaskContext) -> int:
    """Works in steps, `ctx.checkpoint`ing the time done; raises Interrupt when asked to stop."""
    with recorded(ctx):
        done: float = ctx.checkpoint_state or 0.0
        total = length(key)
        while done < total:
            if ctx.stop_requested:
                raise Interrupt()
            time.sleep(min(STEP_S, total - done))
            done += STEP_S
            ctx.checkpoint(done)
    return key


async def plain_async(key: int, ctx: TaskContext) -> int:
    with recorded(ctx):
        await asyncio.sleep(length(key))
    return key


async def stepwise_async(key: int, ctx: TaskContext) -> int:
    with recorded(ctx):
        for _ in ctx.resume(range(steps(key))):
            await asyncio.sleep(STEP_S)
    return key


async def careful_async(key: int, ctx: TaskContext) -> int:
    with recorded(ctx):
        done: float = ctx.checkpoint_state or 0.0
        total = length(key)
        while done < total:
            if ctx.stop_requested:
                raise Interrupt()
            await asyncio.sleep(min(STEP_S, total - done))
            done += STEP_S
            ctx.checkpoint(done)
    return key


SYNC_TASKS: tuple[Callable[..., Any], ...] = (plain, stepwise, careful)
ASYNC_TASKS: tuple[Callable[..., Any], ...] = (plain_async, stepwise_async, careful_async)
TASK_WEIGHTS = (2, 1, 1)
"""Half the tasks ignore stop requests; the other half checkpoint and hand themselves back."""


def register(target: Scoter) -> None:
    """Register the chaos tasks on `target` (the consumers' app, or a producer)."""
    for fn in (*SYNC_TASKS, *ASYNC_TASKS):
        target.task(context=True, max_crashes=BUDGET, max_interruptions=BUDGET)(fn)


register(app)


# -- the runs, read back by the chaos process ---------------------------------------------------


@dataclass(frozen=True)
class Run:
    """One execution of a task, as its process recorded it."""

    task: str
    attempt: int
    pid: int
    ppid: int
    expires: float
    """The lease's expiry as claimed: the claim happened `lease` seconds before."""
    started: float
    ended: float | None
    outcome: str | None
    """COMPLETED, INTERRUPTED, LEASE_LOST, "raised X", or None: its process died first."""


def create_runs_dir(path: Path) -> None:
    """An empty directory for the runs files (those of an earlier run there are removed)."""
    path.mkdir(parents=True, exist_ok=True)
    for leftover in path.glob("runs-*.db*"):
        leftover.unlink()


def read_runs(path: Path) -> list[Run]:
    """Every run the processes recorded in directory `path`, in the order they started."""
    query = "SELECT task, attempt, pid, ppid, expires, started, ended, outcome FROM runs"
    runs = []
    for file in sorted(path.glob("runs-*.db")):
        with contextlib.closing(sqlite3.connect(file, timeout=60.0)) as db:
            if not db.execute(RUNS_TABLE_EXISTS).fetchone():
                continue  # its process was killed between creating the file and the table
            runs += [Run(*row) for row in db.execute(query)]
    return sorted(runs, key=lambda run: run.started)


RUNS_TABLE_EXISTS = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'runs'"
