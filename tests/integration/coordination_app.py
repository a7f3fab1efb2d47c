"""integration_app with the tasks of the coordination tests: a lock held until its consumer is
killed, and one that waits for it; a task two of which may run at once; one 20 a second; a
unique one."""

from __future__ import annotations

import os
import sqlite3
import time
from typing import Any

from integration_app import app, record

from scoter import TaskContext, TaskLockedException

__all__ = ["app"]

LOCK = "shared-report"


@app.task(context=True)
def hold_lock(seconds: float, ctx: TaskContext) -> None:
    with app.lock_task(LOCK):
        record("locked", ctx)
        time.sleep(seconds)


@app.task(context=True)
def take_lock(ctx: TaskContext) -> None:
    """Tries for the lock every 50 ms until it gets it."""
    record("trying", ctx)
    while True:
        try:
            with app.lock_task(LOCK):
                record("locked", ctx)
                return
        except TaskLockedException:
            time.sleep(0.05)


def record_at(event: str, ctx: TaskContext, at: float) -> None:
    """`record` with the time of the event taken by the caller: writing the record may wait
    for the file's lock, which must not move the event."""
    with sqlite3.connect(os.environ["SCOTER_TEST_RUNS"], timeout=30) as db:
        db.execute(
            "CREATE TABLE IF NOT EXISTS runs (task TEXT, event TEXT, pid INT, attempt INT, at REAL)"
        )
        db.execute("INSERT INTO runs VALUES (?, ?, ?, ?, ?)",
                   (ctx.task_id, event, os.getpid(), ctx.attempt, at))  # fmt: skip


@app.task(context=True, concurrency=2)
def pair(seconds: float, ctx: TaskContext) -> None:
    started = time.time()
    time.sleep(seconds)
    ended = time.time()
    record_at("started", ctx, started)
    record_at("finished", ctx, ended)


@app.task(context=True, rate_limit="20/s")
def paced(ctx: TaskContext) -> None:
    started = time.time()
    record_at("claimed", ctx, ctx.lease.expires - ctx.lease_s)  # on the storage's clock
    record_at("started", ctx, started)


@app.task(context=True, unique=True)
def once(report: str, ctx: TaskContext) -> None:
    record("started", ctx)


def enqueue_once(calls: int, start: Any, out: Any) -> None:
    """In a spawned process: enqueue `once("daily")` `calls` times; report the ids returned."""
    try:
        start.wait(30)
        out.put(([once("daily").id for _ in range(calls)], None))
    except Exception as exc:
        out.put(([], repr(exc)))
