"""Executors run attempts and hand each outcome to the settler; the thread executor."""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

from scoter.consumer import attempt
from scoter.consumer.attempt import Outcome
from scoter.context import TaskContext
from scoter.display import printable

if TYPE_CHECKING:
    from scoter.app import Scoter

log = logging.getLogger("scoter.consumer")

STOP_JOIN_S = 0.5
"""How long a stopping thread executor waits for its workers to end (idle ones end at once)."""

Settle = Callable[[TaskContext, Outcome], None]
"""Where an executor hands each finished attempt: `Settler.put`."""


class Executor(Protocol):
    """Runs attempts; the supervisor owns leases, heartbeats and the shutdown plan."""

    def start(self) -> None: ...

    def submit(self, ctx: TaskContext) -> None: ...

    def request_stop(self, ctx: TaskContext) -> None:
        """Set `ctx.stop_requested` where the task runs."""

    def time_out(self, ctx: TaskContext) -> None:
        """The attempt ran past its time limit."""

    def fence(self, ctx: TaskContext) -> None:
        """The attempt's lease is lost, or about to be: end it now, as hard as this executor
        can (another consumer may start the task)."""

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

    def __init__(self, app: Scoter, workers: int, settle: Settle) -> None:
        """
        :param settle: where each attempt's outcome goes (the settler's `put`).
        """
        self.app = app
        self.settle = settle
        self._work: queue.SimpleQueue[TaskContext | None] = queue.SimpleQueue()
        self._running: set[threading.Thread] = set()
        """Workers inside an attempt now."""
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
        """Ask every worker to end; wait a moment for the idle ones, so that their
        `on_shutdown` hooks run before the process exits (busy ones are left running)."""
        for _ in self._threads:
            self._work.put(None)
        deadline = time.monotonic() + STOP_JOIN_S
        for thread in self._threads:
            if thread.ident is not None and thread not in self._running:
                thread.join(max(0.0, deadline - time.monotonic()))

    def request_stop(self, ctx: TaskContext) -> None:
        ctx.request_stop()

    def abandon(self) -> None:
        """Threads cannot be killed: a task still running is released under it."""

    def fence(self, ctx: TaskContext) -> None:
        """Threads cannot be killed: the task sees `ctx.stop_requested`."""
        ctx.request_stop()

    def time_out(self, ctx: TaskContext) -> None:
        """Threads cannot be stopped: ask the task; the attempt is reported as timed out."""
        ctx.time_out()

    def busy_threads(self) -> int:
        """Worker threads still running (after stop(): still inside task code)."""
        return sum(t.is_alive() for t in self._threads)

    def _work_loop(self) -> None:
        self.app.hooks.worker_started()
        me = threading.current_thread()
        while (ctx := self._work.get()) is not None:
            if ctx.begin():  # else the consumer handed it back before it started
                self._running.add(me)
                self.settle(ctx, self._execute(ctx))
                self._running.discard(me)
        self.app.hooks.worker_stopped()

    def _execute(self, ctx: TaskContext) -> Outcome:
        try:
            return attempt.execute(self.app, ctx)
        except Exception as exc:  # a bug of ours: fail the attempt, keep the worker
            log.exception("task %s: the thread executor failed", printable(ctx.task_id))
            return Outcome.failed(exc)
