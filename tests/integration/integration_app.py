"""The app the integration tests run in real `scoter worker` processes.

Storage comes from $SCOTER_URL. Tasks record what they did in a separate SQLite file named by
$SCOTER_TEST_RUNS, so tests count executions by their side effects, not by logs.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import sys
import time

from scoter import SIGNAL_INTERRUPTED, Interrupt, Scoter, TaskContext, TaskRef

app = Scoter("integration")


@app.signal(SIGNAL_INTERRUPTED)
def requeue(signal: str, task: TaskRef) -> None:
    """The hand-written recipe Huey users add; with scoter it must be a harmless no-op."""
    with sqlite3.connect(os.environ["SCOTER_TEST_RUNS"], timeout=30) as db:
        db.execute("CREATE TABLE IF NOT EXISTS requeues (task TEXT, at REAL)")
        db.execute("INSERT INTO requeues VALUES (?, ?)", (task.id, time.time()))
    app.enqueue(task)


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
def ticks(seconds: float, ctx: TaskContext) -> int:
    """Records a tick every 50 ms without touching the queue's storage; stops when asked."""
    record("started", ctx)
    ends = time.monotonic() + seconds
    while time.monotonic() < ends:
        if ctx.stop_requested:
            record("stopped", ctx)
            raise Interrupt()
        record("tick", ctx)
        time.sleep(0.05)
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


@app.task(context=True)
def spin(seconds: float, ctx: TaskContext) -> int:
    """CPU-bound, holding the GIL in C code (sum over a range) for long stretches."""
    record("started", ctx)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        sum(range(3_000_000))
    record("finished", ctx)
    return os.getpid()


@app.task(context=True, timeout=1.0)
def overrun(ctx: TaskContext) -> None:
    """Ignores its time limit: only a killed process or a cancelled coroutine stops it."""
    record("started", ctx)
    while True:
        time.sleep(0.05)


@app.task(context=True, timeout=0.5)
def overrun_politely(ctx: TaskContext) -> str:
    """Notices its time limit through ctx.stop_requested and returns."""
    record("started", ctx)
    ctx.wait_for_stop(30)
    return "returned"


@app.task(context=True, timeout=1.0)
async def overrun_async(ctx: TaskContext) -> None:
    record("started", ctx)
    await asyncio.sleep(60)


@app.task(context=True)
async def polite_async(seconds: float, ctx: TaskContext) -> int:
    """An async task that hands itself back when asked to stop, from its checkpoint."""
    record("started", ctx)
    done: float = ctx.checkpoint_state or 0.0
    if done:
        record("resumed", ctx)
    while done < seconds:
        if ctx.stop_requested:
            record("interrupted", ctx)
            raise Interrupt()
        await asyncio.sleep(0.05)
        done += 0.05
        ctx.checkpoint(done)
    record("finished", ctx)
    return os.getpid()


@app.task(context=True)
def steps(count: int, ctx: TaskContext) -> int:
    """Records every step it performs; resumes after the last checkpointed step."""
    for step in ctx.resume(range(count)):
        time.sleep(0.05)
        record(f"step {step}", ctx)
    record("finished", ctx)
    return count


@app.task(context=True, retries=1, retry_delay=0.1)
def exits(code: int, ctx: TaskContext) -> None:
    """Calls sys.exit(), as a click command's main() called from a task does."""
    record("started", ctx)
    sys.exit(code)


@app.task(context=True, retries=1, retry_delay=0.1)
async def exits_async(code: int, ctx: TaskContext) -> None:
    record("started", ctx)
    sys.exit(code)


@app.task(context=True)
async def cancels_itself(ctx: TaskContext) -> None:
    """Cancels a future it awaits: its own CancelledError, not the consumer's."""
    record("started", ctx)
    waiting = asyncio.get_running_loop().create_future()
    asyncio.get_running_loop().call_later(0.01, waiting.cancel)
    await waiting


@app.task(context=True)
async def blocks_loop(seconds: float, ctx: TaskContext) -> None:
    """Blocks the event loop (a sync call inside a coroutine): no cancel can reach it."""
    record("started", ctx)
    time.sleep(seconds)
    record("finished", ctx)
