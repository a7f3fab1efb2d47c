"""The thread executor: a fixed pool of worker threads running attempts."""

from __future__ import annotations

import logging
import queue
import threading
import time
from typing import Protocol

from scoter.consumer.inflight import InFlight
from scoter.consumer.runner import SUCCEEDED, Runner
from scoter.consumer.settler import Settler
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

    def __init__(self, runner: Runner, inflight: InFlight, workers: int, settler: Settler) -> None:
        """
        :param settler: acknowledges successes off the workers' path and delivers the tasks
            it claims to them.
        """
        self.runner = runner
        self.inflight = inflight
        self.workers = workers
        self.settler = settler
        self._work: queue.SimpleQueue[TaskContext | None] = queue.SimpleQueue()
        settler.deliver = self.submit
        self._threads = [
            threading.Thread(target=self._work_loop, name=f"scoter-worker-{i}", daemon=True)
            for i in range(workers)
        ]

    def start(self) -> None:
        for thread in self._threads:
            thread.start()
        self.settler.start()

    def submit(self, ctx: TaskContext) -> None:
        self._work.put(ctx)

    def stop(self) -> None:
        for _ in self._threads:
            self._work.put(None)
        self.settler.stop()

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
            if ctx.begin():  # else the consumer handed it back before it started
                self._run(ctx)

    def _run(self, ctx: TaskContext) -> None:
        """Run one attempt; a success goes to the settler, anything else is settled here."""
        try:
            started = time.monotonic()
            ran = self.runner.attempt(ctx)
            if ran is None:  # undeliverable: already dead
                self.inflight.remove(ctx)
                return
            outcome, ref = ran
            if outcome.kind == SUCCEEDED:
                if self.runner.may_settle(ctx, outcome.kind):
                    ran_s = time.monotonic() - started
                    self.settler.put(ctx, ref, outcome.result, ran_s)  # in flight until acked
                return
            self.runner.settle(ctx, outcome, ref)
        except Exception:  # a bug of ours: keep the thread; the lease will expire
            log.exception("task %s: the runner failed", ctx.task_id)
        self.inflight.remove(ctx)
