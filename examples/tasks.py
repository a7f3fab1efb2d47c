"""A tiny app: run `scoter worker examples.tasks:app`, then enqueue from another shell."""

import time

from scoter import Interrupt, Scoter, TaskContext

app = Scoter("examples")  # sqlite:///examples.db in the working directory, or $SCOTER_URL


@app.task(retries=3, retry_delay=1.0, retry_backoff=2.0)
def add(a: int, b: int) -> int:
    return a + b


@app.task(context=True)
def count_to(ctx: TaskContext, n: int) -> int:
    """A long task that checkpoints, so an interrupted run resumes where it stopped."""
    i: int = ctx.checkpoint_state or 0
    while i < n:
        if ctx.stop_requested:
            raise Interrupt()  # handed back at no cost to `retries`; resumes from i
        time.sleep(0.1)
        i += 1
        ctx.checkpoint(i)
    return i
