"""The thread executor: a fixed pool of worker threads running attempts."""

from __future__ import annotations

import logging
import queue
import threading

from scoter.consumer.inflight import InFlight
from scoter.consumer.runner import Runner
from scoter.context import TaskContext

log = logging.getLogger("scoter.consumer")


class ThreadExecutor:
    """Runs each submitted attempt on one of `workers` daemon threads.

    Daemon threads, because a consumer that gave up on a task at its drain deadline (the lease
    is released, so the attempt's late writes are refused) must still be able to exit.
    """

    def __init__(self, runner: Runner, inflight: InFlight, workers: int) -> None:
        self.runner = runner
        self.inflight = inflight
        self.workers = workers
        self._work: queue.SimpleQueue[TaskContext | None] = queue.SimpleQueue()
        self._threads = [
            threading.Thread(target=self._work_loop, name=f"scoter-worker-{i}", daemon=True)
            for i in range(workers)
        ]

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def submit(self, ctx: TaskContext) -> None:
        self._work.put(ctx)

    def stop(self) -> None:
        for _ in self._threads:
            self._work.put(None)

    def busy_threads(self) -> int:
        """Worker threads still running (after stop(): still inside task code)."""
        return sum(t.is_alive() for t in self._threads)

    def _work_loop(self) -> None:
        while (ctx := self._work.get()) is not None:
            try:
                self.runner.execute(ctx.lease, ctx)
            except Exception:  # a bug of ours: keep the thread; the lease will expire
                log.exception("task %s: the runner failed", ctx.task_id)
            finally:
                self.inflight.remove(ctx)
