"""The asyncio executor: `async def` tasks run concurrently on one event loop thread.

Heartbeats stay on the consumer's heartbeat thread, never on the loop, so a coroutine that
blocks the loop cannot starve them; outcomes go to the settler, so no write blocks the loop.
A time limit or the drain deadline cancels the coroutine: a time limit counts as an error
(retried per policy), the deadline releases the task as interrupted. Only the consumer's own
cancellation is an interruption: a `CancelledError` the task's code raises by itself (it
cancelled a future it awaited) is its error. Plain (non-async) functions run on daemon threads
of their own, so that a consumer past its drain deadline never waits for them to exit.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from scoter.consumer import attempt
from scoter.consumer.attempt import Outcome, Undeliverable
from scoter.consumer.executor import Settle
from scoter.context import TaskContext, deactivate
from scoter.display import printable
from scoter.exceptions import Cancel, Interrupt, TimedOut

if TYPE_CHECKING:
    from scoter.app import Scoter

log = logging.getLogger("scoter.consumer")

ABANDON_WAIT_S = 0.5
"""How long the drain deadline waits for cancelled coroutines to end: they end at their next
await; one that blocks the loop does not, and is released under it."""
STOP_JOIN_S = 0.5

CANCELLED_FOR_TIMEOUT = "timeout"
CANCELLED_FOR_SHUTDOWN = "shutdown"
CANCELLED_FOR_FENCE = "lease lost"


class AsyncioExecutor:
    """Runs up to `workers` attempts at once as asyncio tasks on a dedicated loop thread."""

    stops_tasks = False  # a coroutine that blocks the loop cannot be cancelled

    def __init__(self, app: Scoter, settle: Settle) -> None:
        self.app = app
        self.settle = settle
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="scoter-asyncio",
                                        daemon=True)  # fmt: skip
        self._running: dict[TaskContext, asyncio.Task[Outcome]] = {}
        self._cancelled_for: dict[TaskContext, str] = {}
        self._sync_threads: set[threading.Thread] = set()
        self._abandoning = False
        self._loop_blocked = False

    def start(self) -> None:
        """Start the loop thread, the one worker of this executor: `on_startup` runs there
        first."""
        self._thread.start()
        self._loop.call_soon_threadsafe(self.app.hooks.worker_started)

    def submit(self, ctx: TaskContext) -> None:
        self._loop.call_soon_threadsafe(self._start_attempt, ctx)

    def request_stop(self, ctx: TaskContext) -> None:
        ctx.request_stop()

    def time_out(self, ctx: TaskContext) -> None:
        ctx.time_out()
        self._cancel(ctx, CANCELLED_FOR_TIMEOUT)

    def fence(self, ctx: TaskContext) -> None:
        """Cancel the coroutine (a plain function on its thread sees `ctx.stop_requested`)."""
        ctx.request_stop()
        self._cancel(ctx, CANCELLED_FOR_FENCE)

    def abandon(self) -> None:
        """Cancel what still runs; each cancelled attempt releases its task as interrupted.
        What has not ended after ABANDON_WAIT_S (a blocked loop, a plain function) is left
        for the consumer to hand back."""
        self._abandoning = True  # attempts not started yet are left to the consumer
        for ctx in list(self._running):
            self._cancel(ctx, CANCELLED_FOR_SHUTDOWN)
        done = threading.Event()
        self._loop.call_soon_threadsafe(self._notify_when_idle, done)
        self._loop_blocked = not done.wait(ABANDON_WAIT_S)

    def stop(self) -> None:
        """Run `on_shutdown` on the loop and stop it; wait for it only if it answered at the
        drain deadline (a blocked loop is left to end with the process, hooks unrun)."""
        if not self._loop_blocked:
            self._loop.call_soon_threadsafe(self.app.hooks.worker_stopped)
        self._loop.call_soon_threadsafe(self._loop.stop)
        if not self._loop_blocked:
            self._thread.join(STOP_JOIN_S)

    def busy_threads(self) -> int:
        """Threads still inside task code: the loop's, and those running plain functions."""
        return int(self._thread.is_alive()) + sum(t.is_alive() for t in self._sync_threads)

    # -- on the loop -----------------------------------------------------------------------

    def _start_attempt(self, ctx: TaskContext) -> None:
        if not self._abandoning and ctx.begin():
            self._loop.create_task(self._attempt(ctx))

    def _cancel(self, ctx: TaskContext, reason: str) -> None:
        def cancel() -> None:
            task = self._running.get(ctx)
            if task is not None:
                self._cancelled_for[ctx] = reason
                task.cancel()

        self._loop.call_soon_threadsafe(cancel)

    def _notify_when_idle(self, done: threading.Event) -> None:
        if self._running:
            self._loop.call_later(0.01, self._notify_when_idle, done)
        else:
            done.set()

    async def _attempt(self, ctx: TaskContext) -> None:
        try:
            outcome = await self._execute(ctx)
        except Exception as exc:  # a bug of ours: the lease expires, the task runs again
            log.exception("task %s: the asyncio executor failed", printable(ctx.task_id))
            outcome = Outcome.failed(exc)
        self.settle(ctx, outcome)

    async def _execute(self, ctx: TaskContext) -> Outcome:
        if ctx.lease_lost:
            return Outcome.interrupted(attempt.LOST_BEFORE_START)
        try:
            task, args, kwargs = attempt.decode(self.app, ctx)
        except Undeliverable as bad:
            return bad.outcome()
        attempt.executing(self.app, ctx, args, kwargs)
        if not inspect.iscoroutinefunction(task.fn):
            return await self._in_thread(lambda: attempt.run(self.app, task, args, kwargs, ctx))
        if ctx.flow is not None and ctx.flow.gather is not None:  # a chord's callback
            try:
                args = await asyncio.to_thread(attempt.with_gathered, self.app, ctx, args)
            except Exception as exc:
                return Outcome.failed(exc)
        outcome = await self._run_cancellable(ctx, lambda: task.invoke(args, kwargs, ctx))
        return attempt.finished(ctx, task, outcome)

    async def _run_cancellable(self, ctx: TaskContext, call: Callable[[], Any]) -> Outcome:
        """Run the task's coroutine (`call()`) as an asyncio task of its own: a cancel reaches
        the task's code only, never what follows it."""
        run = self._loop.create_task(self._run_coroutine(ctx, call))
        self._running[ctx] = run
        try:
            return await run
        except asyncio.CancelledError:  # cancelled before its first step
            return self._cancelled(ctx, None)
        finally:
            self._running.pop(ctx, None)
            self._cancelled_for.pop(ctx, None)

    async def _run_coroutine(self, ctx: TaskContext, call: Callable[[], Any]) -> Outcome:
        token = ctx.activate()
        tracing, task = self.app.tracing, self.app.tasks[ctx.task_name]
        traced = None if tracing is None else tracing.attempt(ctx, task)
        outcome = None
        try:
            outcome = await self._await(ctx, call)
            return outcome
        finally:
            deactivate(token)
            if traced is not None:
                traced.end(None if outcome is None else attempt.timed_out(ctx, task, outcome))

    async def _await(self, ctx: TaskContext, call: Callable[[], Any]) -> Outcome:
        """Await the task's coroutine between the app's pre- and post-execute hooks (plain
        functions, called on the loop thread)."""
        hooks = self.app.hooks
        try:
            if hooks.pre:
                hooks.before(ctx)
        except Cancel as exc:  # the coroutine never starts
            return Outcome.undeliverable(attempt.CANCELED, str(exc) or "canceled by a hook")
        started = self._loop.time()
        try:
            value = await call()
            outcome = attempt.succeeded(self.app, ctx, value, self._loop.time() - started)
        except BaseException as exc:  # SystemExit too: the task's error, never the loop's end
            if hooks.post:
                hooks.after(ctx, None, exc)
            return self._raised(ctx, exc, self._loop.time() - started)
        if hooks.post:
            hooks.after(ctx, value, None)
        return outcome

    def _raised(self, ctx: TaskContext, exc: BaseException, ran_s: float) -> Outcome:
        """The outcome of a coroutine that raised `exc`, as a plain function's would be."""
        if isinstance(exc, asyncio.CancelledError):
            return self._cancelled(ctx, exc)
        if isinstance(exc, Interrupt):
            return Outcome.interrupted("the task raised Interrupt", exc.delay)
        if isinstance(exc, Cancel):
            return Outcome.undeliverable(attempt.CANCELED, str(exc) or "the task was canceled")
        return Outcome.failed(exc, ran_s)

    def _cancelled(self, ctx: TaskContext, exc: asyncio.CancelledError | None) -> Outcome:
        """A cancellation is an interruption or a time-out only when the consumer made it."""
        why = self._cancelled_for.get(ctx)
        if why == CANCELLED_FOR_TIMEOUT:
            return Outcome.failed(TimedOut("the task ran past its time limit and was cancelled"))
        if why == CANCELLED_FOR_SHUTDOWN:
            return Outcome.interrupted("consumer shutdown: cancelled")
        if why == CANCELLED_FOR_FENCE:
            return Outcome.interrupted("lease lost: cancelled")
        return Outcome.failed(exc or asyncio.CancelledError())

    async def _in_thread(self, call: Any) -> Outcome:
        """Run a plain function on a daemon thread of its own, awaiting its outcome."""
        future: asyncio.Future[Outcome] = self._loop.create_future()

        def run() -> None:
            outcome = call()
            self._loop.call_soon_threadsafe(_resolve, future, outcome)

        thread = threading.Thread(target=run, name="scoter-asyncio-sync", daemon=True)
        self._sync_threads.add(thread)
        thread.start()
        try:
            return await future
        finally:
            self._sync_threads.discard(thread)


def _resolve(future: asyncio.Future[Outcome], outcome: Outcome) -> None:
    if not future.done():
        future.set_result(outcome)
