"""The asyncio executor: `async def` tasks run concurrently on one event loop thread.

Heartbeats stay on the consumer's heartbeat thread, never on the loop, so a coroutine that
blocks the loop cannot starve them. Storage writes (settling) run on a small thread pool so
they never block the loop. A time limit or the drain deadline cancels the coroutine: a time
limit counts as an error (retried per policy), the deadline releases the task as interrupted.
Plain (non-async) functions run on the thread pool.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import inspect
import logging
import threading
from typing import Any

from scoter.consumer.followup import FollowUp
from scoter.consumer.inflight import InFlight
from scoter.consumer.runner import INTERRUPTED, Outcome, Runner, Undeliverable
from scoter.context import TaskContext, deactivate
from scoter.exceptions import Interrupt, TimedOut

log = logging.getLogger("scoter.consumer")

ABANDON_WAIT_S = 2.0
SETTLE_THREADS_MAX = 8

CANCELLED_FOR_TIMEOUT = "timeout"
CANCELLED_FOR_SHUTDOWN = "shutdown"


class AsyncioExecutor:
    """Runs up to `workers` attempts at once as asyncio tasks on a dedicated loop thread."""

    stops_tasks = False  # a coroutine that blocks the loop cannot be cancelled

    def __init__(
        self, runner: Runner, inflight: InFlight, workers: int, follow_up: FollowUp | None = None
    ) -> None:
        self.runner = runner
        self.inflight = inflight
        self.follow_up = follow_up
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="scoter-asyncio",
                                        daemon=True)  # fmt: skip
        self._pool = concurrent.futures.ThreadPoolExecutor(
            min(workers, SETTLE_THREADS_MAX), thread_name_prefix="scoter-settle"
        )
        self._running: dict[TaskContext, asyncio.Task[Outcome]] = {}
        self._cancelled_for: dict[TaskContext, str] = {}
        self._abandoning = False

    def start(self) -> None:
        self._thread.start()

    def submit(self, ctx: TaskContext) -> None:
        self._loop.call_soon_threadsafe(self._start_attempt, ctx)

    def request_stop(self, ctx: TaskContext) -> None:
        ctx.request_stop()

    def time_out(self, ctx: TaskContext) -> None:
        ctx.time_out()
        self._cancel(ctx, CANCELLED_FOR_TIMEOUT)

    def abandon(self) -> None:
        """Cancel what still runs; each cancelled attempt releases its task as interrupted."""
        self._abandoning = True  # attempts not started yet are left to the consumer
        for ctx in list(self._running):
            self._cancel(ctx, CANCELLED_FOR_SHUTDOWN)
        done = threading.Event()
        self._loop.call_soon_threadsafe(self._notify_when_idle, done)
        done.wait(ABANDON_WAIT_S)

    def stop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(ABANDON_WAIT_S)
        self._pool.shutdown(wait=False, cancel_futures=True)

    def busy_threads(self) -> int:
        return int(self._thread.is_alive())

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
            leases = await self._execute(ctx)
        except Exception:
            log.exception("task %s: the runner failed", ctx.task_id)
            leases = []
        following = [self.runner.context(lease) for lease in leases]
        for next_ctx in following:
            self.inflight.add(next_ctx)
            self._start_attempt(next_ctx)
        self.inflight.remove(ctx)

    async def _execute(self, ctx: TaskContext) -> list[Any]:
        try:
            task, args, kwargs = self.runner.decode(ctx.lease)
        except Undeliverable as bad:
            await self._in_pool(self.runner.undeliverable, ctx, bad)
            return []
        if inspect.iscoroutinefunction(task.fn):
            call_kwargs = {**kwargs, "ctx": ctx} if task.context else kwargs
            outcome = await self._run_cancellable(ctx, task.fn, args, call_kwargs)
        else:
            outcome = await self._in_pool(self.runner.run, task, args, kwargs, ctx)
        leases: list[Any] = await self._in_pool(
            self.runner.settle, ctx, outcome, None, self.follow_up
        )
        return leases

    async def _run_cancellable(
        self, ctx: TaskContext, fn: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Outcome:
        """Run the task's coroutine as an asyncio task of its own: a cancel reaches the task's
        code only, never the settling that follows it."""
        run = self._loop.create_task(self._run_coroutine(ctx, fn, args, kwargs))
        self._running[ctx] = run
        try:
            return await run
        except asyncio.CancelledError:  # cancelled before its first step
            return self._cancelled(ctx)
        finally:
            self._running.pop(ctx, None)
            self._cancelled_for.pop(ctx, None)

    async def _run_coroutine(
        self, ctx: TaskContext, fn: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Outcome:
        token = ctx.activate()
        try:
            value = await fn(*args, **kwargs)
            return Outcome.succeeded(self.runner.encode_result(value))
        except asyncio.CancelledError:
            return self._cancelled(ctx)
        except Interrupt:
            return Outcome(INTERRUPTED, error="the task raised Interrupt")
        except Exception as exc:
            return Outcome.failed(exc)
        finally:
            deactivate(token)

    def _cancelled(self, ctx: TaskContext) -> Outcome:
        if self._cancelled_for.get(ctx) == CANCELLED_FOR_TIMEOUT:
            return Outcome.failed(TimedOut("the task ran past its time limit and was cancelled"))
        return Outcome(INTERRUPTED, error="consumer shutdown: cancelled")

    async def _in_pool(self, fn: Any, *args: Any) -> Any:
        return await self._loop.run_in_executor(self._pool, fn, *args)
