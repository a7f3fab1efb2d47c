"""The app the integration tests run in real `scoter worker` processes.

Storage comes from $SCOTER_URL. Tasks record what they did in a separate SQLite file named by
$SCOTER_TEST_RUNS, so tests count executions by their side effects, not by logs.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import time

from scoter import Interrupt, Scoter, TaskContext

app = Scoter("integration")


def record(event: str, ctx: TaskContext) -> None:
    with sqlite3.connect(os.environ["SCOTER_TEST_RUNS"], timeout=30) as db:
        db.execute(
            "CREATE TABLE IF NOT EXISTS runs (task TEXT, event TEXT, pid INT, attempt INT, at REAL)"
        )
        db.execute(
            "INSERT INTO runs VALUES (?, ?, ?, ?, ?)",
            (ctx.task_id, event, os.getpid(), ctx.attempt, time.time()),
        )


@app.task(context=True)
def sleepy(seconds: float, ctx: TaskContext) -> int:
    """Sleeps without looking at stop requests (a non-cooperative task)."""
    record("started", ctx)
    time.sleep(seconds)
    record("finished", ctx)
    return os.getpid()


@app.task(context=True)
def polite(seconds: float, ctx: TaskContext) -> int:
    """Sleeps in steps, checkpointing; hands itself back when asked to stop."""
    record("started", ctx)
    done: float = ctx.checkpoint_state or 0.0
    if done:
        record("resumed", ctx)
    while done < seconds:
        if ctx.stop_requested:
            record("interrupted", ctx)
            raise Interrupt()
        time.sleep(0.05)
        done += 0.05
        ctx.checkpoint(done)
    record("finished", ctx)
    return os.getpid()


@app.task(context=True, max_crashes=2)
def crash(ctx: TaskContext) -> None:
    """Kills its own consumer, as an OOM kill or a segfault would."""
    record("started", ctx)
    os.kill(os.getpid(), signal.SIGKILL)


@app.task(context=True, retries=2, retry_delay=0.3, retry_backoff=2.0)
def fail(ctx: TaskContext) -> None:
    record("started", ctx)
    raise ValueError("this task always fails")
