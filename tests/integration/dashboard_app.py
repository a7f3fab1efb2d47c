"""The app of the dashboard's browser tests: a task for each way a task ends.

Storage comes from $SCOTER_URL.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

from scoter import Interrupt, Scoter, TaskContext

app = Scoter("shop")


@app.task
def add(a: int, b: int) -> int:
    return a + b


@app.task(retries=0)
def fixable(flag: str) -> str:
    """Fails until the file `flag` exists: a dead task that a retry fixes."""
    if not Path(flag).exists():
        raise ValueError(f"flag file {flag} is missing")
    return "fixed"


@app.task(max_crashes=1)
def crasher() -> None:
    """Kills its own worker process: dead `crashed`, the signal in its history."""
    os.kill(os.getpid(), signal.SIGKILL)


@app.task(context=True)
def slow(seconds: float, ctx: TaskContext) -> None:
    """Runs for `seconds`, reporting progress and checkpointing every 100 ms."""
    steps = int(seconds * 10)
    for step in range(ctx.checkpoint_state or 0, steps):
        if ctx.stop_requested:
            raise Interrupt()
        ctx.progress(step, steps)
        ctx.checkpoint(step)
        time.sleep(0.1)


@app.task(queue="later")
def later() -> None:
    """On a queue no consumer of the tests runs: stays queued."""
