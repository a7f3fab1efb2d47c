"""The thread executor: a fixed pool of worker threads running attempts."""

from __future__ import annotations

import logging
import queue
import threading
from typing import Protocol

from scoter.consumer.followup import FollowUp
from scoter.consumer.inflight import InFlight
from scoter.consumer.runner import Runner
from scoter.context import TaskContext

log = logging.getLogger("scoter.consumer")


class Executor(Protocol):
    """Runs attempts; the supervisor owns leases, heartbeats and the shutdown plan."""

    def start(self) -> None: ...

    def submit(self, ctx: TaskContext) -> None: ...

    def request_stop(self, ctx: TaskContext) -> None:
        """Set `ctx.stop_requested` where the task runs."""

    def time_out(self, ctx: TaskContext) -> None:
        """The attempt ran past its time limit."""

    def abandon(self) -> None:
        """Stop whatever still runs, if this executor can (the drain deadline passed)."""

    stops_tasks: bool
    """Whether `abandon()` ends every attempt still running. When not (threads), a task the
    consumer hands back is held off for a moment, so that its thread is gone before any
    other consumer may claim it."""

    def stop(self) -> None: ...

    def busy_threads(self) -> int:
        """Threads of this process still inside task code after stop()."""


class ThreadExecutor:
    """Runs each submitted attempt on one of `workers` daemon threads.

    Daemon threads, because a consumer that gave up on a task at its drain deadline (the lease
    is released, so the attempt's late writes are refused) must still be able to exit.
    """

    stops_tasks = False

    def __init__(
        self, runner: Runner, inflight: InFlight, workers: int, follow_up: FollowUp | None = None
    ) -> None:
        self.runner = runner
        self.inflight = inflight
        self.workers = workers
        self.follow_up = follow_up
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

    def request_stop(self, ctx: TaskContext) -> None:
        ctx.request_stop()

    def abandon(self) -> None:
        """Threads cannot be killed: a task still running is released under it."""

    def time_out(self, ctx: TaskContext) -> None:
        """Threads cannot be stopped: ask the task; the attempt is reported as timed out."""
        ctx.time_out()

    def busy_threads(self) -> int:
        """Worker threads still running (after stop(): still inside task code)."""
        return sum(t.is_alive() for t in self._threads)

    def _work_loop(self) -> None:
        while (ctx := self._work.get()) is not None:
            while ctx is not None:
                ctx = self._run(ctx)

    def _run(self, ctx: TaskContext) -> TaskContext | None:
        """Run one attempt; return the next one when its ack claimed one."""
        if not ctx.begin():  # handed back at the drain deadline before it started
            return None
        leases = []
        try:
            leases = self.runner.execute(ctx.lease, ctx, self.follow_up)
        except Exception:  # a bug of ours: keep the thread; the lease will expire
            log.exception("task %s: the runner failed", ctx.task_id)
        following = [self.runner.context(lease) for lease in leases]
        for next_ctx in following:
            self.inflight.add(next_ctx)
        self.inflight.remove(ctx)
        for extra in following[1:]:
            self.submit(extra)
        return following[0] if following else None
