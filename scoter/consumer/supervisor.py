"""The consumer's supervisor: owns signals, the fetch loop and the shutdown plan (DESIGN G6).

SIGTERM or SIGINT: stop claiming, keep heartbeating, let running tasks finish until
`drain_timeout`; `stop_grace` seconds before it set `ctx.stop_requested`; at the deadline
release whatever still runs as interrupted (claimable by any consumer at once) and return.
A second signal skips the wait. SIGHUP does the same, then asks for a restart.
Signal handlers only set flags; all I/O happens in the loop.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import time
import uuid
from collections.abc import Sequence
from types import FrameType
from typing import TYPE_CHECKING

from scoter import signals as sig
from scoter.consumer.aio import AsyncioExecutor
from scoter.consumer.executor import Executor, ThreadExecutor
from scoter.consumer.followup import FollowUp
from scoter.consumer.heartbeat import Heartbeat
from scoter.consumer.inflight import InFlight
from scoter.consumer.processes import ProcessExecutor
from scoter.consumer.rescuer import Rescuer
from scoter.consumer.runner import Runner
from scoter.consumer.scheduler import Scheduler
from scoter.consumer.service import Service
from scoter.consumer.settler import Settler
from scoter.context import RUNNING, TaskContext
from scoter.loader import path_of
from scoter.storage.base import Lease

if TYPE_CHECKING:
    from scoter.app import Scoter

log = logging.getLogger("scoter.consumer")

EXIT_OK = 0
EXIT_RESTART = 75
"""Returned by `run()` after SIGHUP: the caller re-executes the process."""

ERROR_BACKOFF_MAX_S = 5.0
EXECUTORS = ("thread", "process", "asyncio")
RELEASE_TIMEOUT_S = 2.0
"""How long a stopping consumer keeps trying to release its tasks through a storage outage."""
HOLD_OFF_S = 1.0
"""How long a task handed back while its thread still runs it waits to be claimed again:
long enough for the consumer to exit first, so that no two attempts ever overlap (G2)."""
HELD_OFF = "still running in its thread"
"""In the history detail of such a hand-back."""
SCHEDULE_INTERVAL_S = 1.0
"""Default seconds between promotions of due scheduled (and held-off) tasks."""
PREFETCH_PER_WORKER = 4
"""Default tasks claimed ahead per worker thread, while tasks are short (Celery's default
prefetch multiplier is 4 too): the deeper the prefetch, the more acks share a write."""


class Consumer:
    """Claims tasks from the app's storage and runs them on worker threads."""

    def __init__(
        self,
        app: Scoter,
        *,
        queues: Sequence[str] | None = None,
        workers: int = 4,
        lease: float = 30.0,
        heartbeat: float | None = None,
        drain_timeout: float = 25.0,
        stop_grace: float = 2.0,
        poll: float = 0.2,
        schedule_interval: float = SCHEDULE_INTERVAL_S,
        rescue_interval: float | None = None,
        executor: str = "thread",
        app_path: str | None = None,
        prefetch: int | None = None,
    ) -> None:
        """
        :param queues: queues to consume, first listed first; default: every task's queue.
        :param workers: worker threads, and so the most tasks run at once.
        :param lease: seconds a claim is held without a heartbeat (the overlap bound of G2).
        :param heartbeat: seconds between lease renewals; default lease / 3.
        :param drain_timeout: seconds a graceful stop waits for running tasks.
        :param stop_grace: seconds before that deadline when tasks see `ctx.stop_requested`.
        :param poll: longest idle wait between claims (the storage may wake earlier).
        :param schedule_interval: seconds between promotions of due scheduled tasks.
        :param rescue_interval: seconds between rescues of expired leases; default lease / 6.
        :param executor: 'thread' (default), 'process' (a child process per worker: for
            CPU-bound tasks and hard time limits) or 'asyncio' (for `async def` tasks).
        :param app_path: `module:attribute` of the app, which process children import;
            found in sys.modules when not given.
        :param prefetch: thread executor: tasks claimed ahead while tasks are short (under
            50 ms), so that a worker never waits for a write; default 4 per worker, 0 for none.
        """
        if workers < 1 or lease <= 0 or drain_timeout < 0 or (prefetch or 0) < 0:
            raise ValueError(
                "workers must be >= 1, lease > 0, drain_timeout >= 0 and prefetch >= 0"
            )
        if executor not in EXECUTORS:
            raise ValueError(f"executor must be one of {', '.join(EXECUTORS)}, not {executor!r}")
        self.app = app
        self.storage = app.storage
        self.queues = list(queues) if queues else _queues_of(app)
        self.workers = workers
        self.lease = lease
        self.drain_timeout = drain_timeout
        self.stop_grace = min(stop_grace, drain_timeout / 2)
        self.poll = poll
        self.id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.inflight = InFlight()
        self.runner = Runner(app, self.id)
        follow_up = FollowUp(self.storage, self.queues, lease, self.id, self._claim_after_ack)
        self.prefetch = PREFETCH_PER_WORKER * workers if prefetch is None else prefetch
        self.executor = self._make_executor(executor, app_path, follow_up)
        self.services: list[Service] = [
            Heartbeat(self.storage, self.inflight, lease, heartbeat or lease / 3, self._lost),
            Scheduler(self.storage, schedule_interval),
            Rescuer(self.storage, app.signals, rescue_interval or lease / 6),
        ]
        self._stop_at: float | None = None
        self._hard = threading.Event()
        self._restart = False
        self._storage_failing = False
        self._backoff = 0.0
        self._idle = False
        """The last claim found nothing: the next one waits for work first."""

    def _make_executor(self, kind: str, app_path: str | None, follow_up: FollowUp) -> Executor:
        if kind == "process":
            path = app_path or path_of(self.app)
            if path is None:
                raise ValueError("the process executor needs app_path='module:attribute'")
            return ProcessExecutor(self.runner, self.inflight, self.workers, path, follow_up)
        if kind == "asyncio":
            return AsyncioExecutor(self.runner, self.inflight, self.workers, follow_up)
        settler = Settler(
            self.runner, self.inflight, self.queues, self.lease, self.workers, self.prefetch,
            claiming=lambda: not self.stopping,
        )  # fmt: skip
        return ThreadExecutor(self.runner, self.inflight, self.workers, settler)

    # -- control (safe from signal handlers and other threads) -----------------------------

    def stop(self, *, graceful: bool = True, restart: bool = False) -> None:
        """Begin the shutdown plan; a second call, or graceful=False, skips the drain."""
        if self._stop_at is not None or not graceful:
            self._hard.set()
        if self._stop_at is None:
            self._stop_at = time.monotonic()
        self._restart = self._restart or restart

    @property
    def stopping(self) -> bool:
        return self._stop_at is not None

    def _claim_after_ack(self) -> int:
        """A worker that just finished claims its next task itself, unless we are stopping."""
        return 0 if self.stopping else 1

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        self.stop(restart=signum == signal.SIGHUP)

    def install_signal_handlers(self) -> None:
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(signum, self._on_signal)

    # -- the loop --------------------------------------------------------------------------

    def run(self) -> int:
        """Consume until stopped; returns EXIT_OK, or EXIT_RESTART after SIGHUP."""
        if threading.current_thread() is threading.main_thread():
            self.install_signal_handlers()
        log.info(
            "consumer %s on %s: queues=%s workers=%d lease=%.0fs drain_timeout=%.0fs",
            self.id, self.storage.url, ",".join(self.queues), self.workers, self.lease,
            self.drain_timeout,
        )  # fmt: skip
        self.executor.start()
        for service in self.services:
            service.start()
        try:
            while not self.stopping:
                self._fetch()
                self._enforce_time_limits()
            self._drain()
        finally:
            self.executor.stop()
            # Threads left inside released tasks: return at once, so the process can exit and
            # the window in which such a thread overlaps the task's next holder stays short.
            join = not self.executor.busy_threads()
            for service in self.services:
                service.stop(join=join)
        return EXIT_RESTART if self._restart else EXIT_OK

    def _fetch(self) -> None:
        free = self.workers - len(self.inflight)
        if free <= 0:
            self.inflight.wait_below(self.workers, self.poll)
            return
        try:
            leases = self._claim(free)
        except Exception as exc:
            self._storage_error(exc)
            return
        self._idle = not leases
        self._storage_ok()
        for lease in leases:
            ctx = self.runner.context(lease)
            self.inflight.add(ctx)
            self.executor.submit(ctx)

    def _claim(self, free: int) -> list[Lease]:
        """Up to `free` tasks; after a claim that found none, wait for work before claiming."""
        if not self._idle:
            leases = self.storage.claim(self.queues, free, self.lease, self.id)
            if leases:
                return leases
        return self.storage.wait_and_claim(self.queues, free, self.lease, self.id, self.poll)

    def _enforce_time_limits(self) -> None:
        now = time.monotonic()
        for ctx in self.inflight.contexts():
            if ctx.deadline is not None and now >= ctx.deadline and not ctx.timed_out:
                log.warning("task %s (%s) ran past its time limit: stop requested",
                            ctx.task_id, ctx.task_name)  # fmt: skip
                self.executor.time_out(ctx)

    def _drain(self) -> None:
        assert self._stop_at is not None
        deadline = self._stop_at + self.drain_timeout
        nudge_at = deadline - self.stop_grace
        for ctx in self.inflight.contexts():  # claimed ahead, not started: others may run them
            if ctx.take_back(unstarted_only=True):
                self._hand_back(ctx, running=False)
        if self.inflight:
            log.info("draining %d task(s), at most %.1fs", len(self.inflight), self.drain_timeout)
        while self.inflight and not self._hard.is_set():
            now = time.monotonic()
            if now >= deadline:
                break
            self._enforce_time_limits()
            if now >= nudge_at:  # every pass: a task a finishing one claimed hears it too
                self._request_stop_all()
            self.inflight.wait_below(1, min(0.05, deadline - now))
        self._request_stop_all()
        self.executor.abandon()
        self._release_all()

    def _request_stop_all(self) -> None:
        for ctx in self.inflight.contexts():
            if not ctx.stop_requested:
                self.executor.request_stop(ctx)

    def _release_all(self) -> None:
        """Hand every unfinished task back; any consumer may claim it at once (G5).

        An attempt its worker is settling (its ack on the way) is left to land, and a task
        that ack claimed next is handed back in turn. The storage may be unreachable:
        retrying stops after RELEASE_TIMEOUT_S, so the consumer still exits; such a task is
        recovered when its lease expires.
        """
        give_up_at = time.monotonic() + RELEASE_TIMEOUT_S
        while self.inflight and time.monotonic() < give_up_at:
            for ctx in self.inflight.contexts():
                ctx.give_up_at = give_up_at
                phase = ctx.take_back()
                if phase is not None:
                    self._hand_back(ctx, running=phase == RUNNING)
            self.inflight.wait_below(1, 0.01)
        for ctx in self.inflight.contexts():
            log.error("task %s (%s) was still being settled when the consumer exited; if that "
                      "failed it runs again when its lease expires", ctx.task_id,
                      ctx.task_name)  # fmt: skip

    def _hand_back(self, ctx: TaskContext, *, running: bool) -> None:
        """Release one attempt, held off for HOLD_OFF_S while a thread of ours still runs it."""
        hold_off = HOLD_OFF_S if running and not self.executor.stops_tasks else 0.0
        reason = "consumer shutdown"
        if hold_off:
            reason += f": {HELD_OFF}, claimable in {hold_off:g} s"
        try:
            self.runner.interrupt(ctx, reason, delay=hold_off)
        except Exception as exc:
            log.error("could not release task %s (%r); it runs again when its lease "
                      "expires", ctx.task_id, exc)  # fmt: skip
        self.inflight.remove(ctx)
        log.info("released task %s (%s) unfinished", ctx.task_id, ctx.task_name)

    @property
    def abandoned_threads(self) -> int:
        """Worker threads still inside task code after `run()` returned."""
        return self.executor.busy_threads()

    # -- failures --------------------------------------------------------------------------

    def _lost(self, ctx: TaskContext) -> None:
        """Heartbeat says the lease is gone: tell the task; its writes will be refused."""
        ctx.lease_lost = True
        self.executor.request_stop(ctx)
        log.warning("task %s (%s): lease lost, another consumer may run it", ctx.task_id,
                    ctx.task_name)  # fmt: skip
        if self.app.signals:
            ref = sig.TaskRef(ctx.task_id, ctx.task_name, ctx.lease.queue, attempt=ctx.attempt)
            self.app.signals.send(sig.SIGNAL_LEASE_LOST, ref, "heartbeat")

    def _storage_error(self, exc: Exception) -> None:
        if not self._storage_failing:
            log.error("storage unavailable, retrying with backoff: %r", exc)
            self._storage_failing = True
        self._backoff = min(max(self._backoff * 2, 0.1), ERROR_BACKOFF_MAX_S)
        time.sleep(self._backoff)

    def _storage_ok(self) -> None:
        if self._storage_failing:
            log.warning("storage reachable again")
            self._storage_failing = False
        self._backoff = 0.0


def _queues_of(app: Scoter) -> list[str]:
    return sorted({task.queue for task in app.tasks.values()} | {app.default_queue})
