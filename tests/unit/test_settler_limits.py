"""The settler claims ahead (`--prefetch`) only tasks without limits: a limited one claimed
ahead would hold its limit's slot, or count as started, while it waits for a worker."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from scoter import Scoter
from scoter.storage.base import NewTask

from .test_settler import QUEUE, WORKERS, Harness


def test_tasks_claimed_ahead_are_never_limited(tmp_path: Path) -> None:
    app = Scoter("settler", f"sqlite:///{tmp_path}/q.db")

    @app.task(concurrency=100)  # never reached: only where the tasks go differs
    def limited() -> None: ...

    @app.task
    def noop() -> None: ...

    app.storage.set_limits([limited.limit])
    harness = Harness(app, prefetch=WORKERS)
    contexts = harness.claimed(WORKERS, backlog=0)
    backlog = [NewTask(f"l{i}", "limited", QUEUE, b"[]") for i in range(2 * WORKERS)]
    backlog += [NewTask(f"n{i}", "noop", QUEUE, b"[]") for i in range(2 * WORKERS)]
    app.storage.enqueue(backlog)

    with harness.settler._wake:  # every ack is queued before the settler takes one: one write
        harness.finish(contexts)
    harness.wait_settled(contexts)
    harness.stop()

    held = Counter(ctx.task_name for ctx in harness.inflight.contexts())
    assert held == {"limited": WORKERS, "noop": WORKERS}, "the first free, the rest ahead"
