"""scoter for `python -m bench lateness`: a task that records when it started against the time
it was due. With $BENCH_LATENESS_PERIODIC set, also a periodic task every second."""

from __future__ import annotations

import os
import time

from bench.lateness_record import ENV_PERIODIC, record
from bench.settings import ENV_SCOTER_URL
from scoter import Scoter, TaskContext, every

app = Scoter("bench", os.environ.get(ENV_SCOTER_URL, "sqlite:///bench-scoter.db"))


@app.task
def late(due: float) -> None:
    record("delayed", due, time.time())


if os.environ.get(ENV_PERIODIC):

    @app.periodic_task(every(seconds=1), context=True)
    def tick(ctx: TaskContext) -> None:
        started = time.time()
        assert ctx.scheduled_for is not None
        record("periodic", ctx.scheduled_for.timestamp(), started)
