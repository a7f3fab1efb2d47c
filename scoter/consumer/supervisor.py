"""The consumer's supervisor: owns signals, the fetch loop and the shutdown plan (DESIGN G6).

SIGTERM or SIGINT: stop claiming, keep heartbeating, let running tasks finish until
`drain_timeout`; `stop_grace` seconds before it set `ctx.stop_requested`; at the deadline
release whatever still runs as interrupted (claimable by any consumer at once) and return.
A second signal skips the wait. SIGHUP does the same, then asks for a restart.
Signal handlers only set flags; all I/O happens in the loop.
"""

from __future__ import annotations

import logging
import math
import os
import signal
import socket
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from types import FrameType
from typing import TYPE_CHECKING

from scoter import signals as sig
from scoter.config import redact
from scoter.consumer import attempt
from scoter.consumer import events as ev
from scoter.consumer.aio import AsyncioExecutor
from scoter.consumer.attempt import Outcome
from scoter.consumer.executor import Executor, ThreadExecutor
from scoter.consumer.heartbeat import Fence, Heartbeat
from scoter.consumer.inflight import InFlight
from scoter.consumer.isolation import Isolation
from scoter.consumer.policy import Policy
from scoter.consumer.processes import ProcessExecutor
from scoter.consumer.rescuer import Rescuer
from scoter.consumer.revocations import RevocationWatch
from scoter.consumer.scheduler import Scheduler
from scoter.consumer.service import Service
from scoter.consumer.settler import Settler
from scoter.context import RUNNING, TaskContext
from scoter.display import one_line, printable
from scoter.exceptions import ConfigurationError
from scoter.loader import path_of
from scoter.states import REVOKED
from scoter.storage import outages
from scoter.storage._limits import limited
from scoter.storage.base import Lease, Storage
from scoter.task import AsyncTask, check_name

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
HAND_BACK_WAIT_S = 0.2
"""How long a hand-back waits for the settler's claims in flight before the next pass tries."""
OVERRUN_GRACE_S = 0.8
"""How long past its drain deadline a stopping consumer may take before `on_overrun` is
called: enough to write its releases when the storage answers."""
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
        on_overrun: Callable[[int], None] | None = None,
        observers: Sequence[ev.Observer] = (),
    ) -> None:
        """
        :param queues: queues to consume, first listed first; default: every task's queue.
        :param workers: worker threads, and so the most tasks run at once.
        :param lease: seconds a claim is held without a heartbeat (the overlap bound of G2).
        :param heartbeat: seconds between lease renewals; default lease / 3.
        :param drain_timeout: seconds a graceful stop waits for running tasks.
        :param stop_grace: seconds before that deadline when tasks see `ctx.stop_requested`.
        :param poll: longest idle wait between claims (the storage may wake earlier).
        :param schedule_interval: the longest time between promotions of due scheduled tasks
            (the scheduler wakes sooner for the earliest eta and the next periodic slot).
        :param rescue_interval: seconds between rescues of expired leases; default lease / 6.
        :param executor: 'thread' (default), 'process' (a child process per worker: for
            CPU-bound tasks and hard time limits) or 'asyncio' (for `async def` tasks).
        :param app_path: `module:attribute` of the app, which process children import;
            found in sys.modules when not given.
        :param prefetch: thread and process executors: tasks claimed ahead while tasks are
            short (under 50 ms), so that a worker never waits for a write; default 4 per
            worker, 0 for none (the asyncio executor claims none ahead).
        :param on_overrun: called from a watchdog thread when a stop has not returned
            OVERRUN_GRACE_S after its drain deadline (a storage call hanging through a network
            partition), with the number of tasks still in flight: `scoter worker` exits the
            process there.
        :param observers: receive the lifecycle events of its tasks (`scoter.consumer.events`;
            more with `consumer.events.add`). The log is one, added when `run()` starts.
        """
        heartbeat = lease / 3 if heartbeat is None else heartbeat
        check_options(
            workers=workers, lease=lease, heartbeat=heartbeat, drain_timeout=drain_timeout,
            stop_grace=stop_grace, poll=poll, schedule_interval=schedule_interval,
            rescue_interval=rescue_interval, prefetch=prefetch, executor=executor,
        )  # fmt: skip
        self.app = app
        self.storage = app.storage
        check_limits(app)
        self.queues = [check_name("queue", q) for q in queues] if queues else _queues_of(app)
        self.workers = workers
        self.lease = lease
        self.drain_timeout = drain_timeout
        self.stop_grace = min(stop_grace, drain_timeout / 2)
        self.poll = poll
        self.id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.inflight = InFlight()
        self.executor_kind = executor
        self.heartbeat_s = heartbeat
        self.events = ev.Events(observers)
        self.policy = Policy(app, self.id, self.events)
        default_prefetch = 0 if executor == "asyncio" else PREFETCH_PER_WORKER * workers
        self.prefetch = default_prefetch if prefetch is None else prefetch
        self.settler = Settler(
            self.policy, self.inflight, self.queues, lease, workers, self.prefetch,
            claiming=self._claiming, new_context=self._new_context,
        )  # fmt: skip
        self.executor = self._make_executor(executor, app_path)
        if executor != "asyncio":
            self._warn_of_async_tasks(executor)
        self.isolation = Isolation(self.storage, self.inflight, self.executor.submit)
        self.settler.deliver = self._admit
        self.heartbeat = Heartbeat(self.storage, self.inflight, lease, heartbeat, self._lost)
        self.scheduler = Scheduler(self.storage, schedule_interval, app)
        self.policy.on_scheduled = self.scheduler.nudge
        self.revocations = RevocationWatch(self.storage, self.inflight, self.executor.request_stop)
        self.services: list[Service] = [
            self.heartbeat,
            Fence(self.inflight, lease, self._lost),
            self.revocations,  # reads the revocations as it starts: before the first claim
            self.scheduler,
            Rescuer(self.storage, app.signals, rescue_interval or lease / 6, self.events),
        ]
        self.started_at: float | None = None
        """When `run()` started (time.monotonic()), or None."""
        self.stop_reason = ""
        """What stopped the consumer: SIGTERM, SIGINT, SIGHUP or stop()."""
        self._stop_at: float | None = None
        self._stopped = threading.Event()
        self._returned = threading.Event()
        self.on_overrun = on_overrun
        self._hard = threading.Event()
        self._restart = False
        self._storage_failing = False
        self._backoff = 0.0
        self._idle = False
        """The last claim found nothing: the next one waits for work first."""
        self._limits_stored = False

    def _make_executor(self, kind: str, app_path: str | None) -> Executor:
        if kind == "process":
            path = app_path or path_of(self.app)
            if path is None:
                raise ValueError("the process executor needs app_path='module:attribute'")
            return ProcessExecutor(path, self.workers, self.lease, self.settler.put)
        if kind == "asyncio":
            return AsyncioExecutor(self.app, self.settler.put)
        return ThreadExecutor(self.app, self.workers, self.settler.put)

    def _warn_of_async_tasks(self, executor: str) -> None:
        """Say at start that this consumer's `async def` tasks need the asyncio executor, rather
        than when each of them goes dead."""
        names = sorted(
            task.name
            for task in self.app.tasks.values()
            if isinstance(task, AsyncTask) and task.queue in self.queues
        )
        if names:
            queues = " ".join(f"-Q {q}" for q in sorted({self.app.tasks[n].queue for n in names}))
            log.warning("task(s) %s are async def: a %s worker cannot run them (they go dead "
                        "with reason %r); run them on a worker started with -k asyncio %s",
                        ", ".join(names), executor, attempt.NEEDS_ASYNCIO, queues)  # fmt: skip

    def _new_context(self, lease: Lease, asked: float) -> TaskContext:
        ctx = attempt.new_context(self.app, lease, self.lease, asked)
        if self.events.wants(ev.STARTED):
            ctx.on_begin = self.events.started
        self.events.emit(ev.RECEIVED, ctx)
        return ctx

    # -- control (safe from signal handlers and other threads) -----------------------------

    def stop(self, *, graceful: bool = True, restart: bool = False, why: str = "stop()") -> None:
        """Begin the shutdown plan; a second call, or graceful=False, skips the drain.

        A stop wins over a restart: a stop during a restart's drain exits for good.
        :param why: what asked for it, for the exit line (`SIGTERM`, ...).
        """
        first = self._stop_at is None
        self.stop_reason = why if first else f"{self.stop_reason}, then {why}"
        if not first or not graceful:
            self._hard.set()
        if first:
            self._stop_at = time.monotonic()
            self._stopped.set()
        self._restart = restart and (first or self._restart)

    @property
    def stopping(self) -> bool:
        return self._stop_at is not None

    def _claiming(self) -> bool:
        """Whether settling may claim successors: not while stopping or isolating a suspect."""
        return not (self.stopping or self.isolation.active)

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        self.stop(restart=signum == signal.SIGHUP, why=signal.Signals(signum).name)

    def install_signal_handlers(self) -> None:
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(signum, self._on_signal)

    # -- the loop --------------------------------------------------------------------------

    def run(self) -> int:
        """Consume until stopped; returns EXIT_OK, or EXIT_RESTART after SIGHUP."""
        if threading.current_thread() is threading.main_thread():
            self.install_signal_handlers()
        if self.started_at is None:  # the log listens for what its level shows now
            self.events.add(ev.LogObserver())
        self.started_at = time.monotonic()
        log.info(
            "consumer %s on %s: app %s, queues=%s executor=%s workers=%d prefetch=%d "
            "lease=%gs heartbeat=%gs drain_timeout=%gs", self.id, where(self.storage),
            printable(self.app.name), printable(",".join(self.queues)), self.executor_kind,
            self.workers, self.prefetch, self.lease, self.heartbeat_s, self.drain_timeout,
        )  # fmt: skip
        self.settler.start()
        self.executor.start()
        for service in self.services:
            service.start()
        if self.on_overrun is not None:
            threading.Thread(target=self._guard, name="scoter-overrun", daemon=True).start()
        try:
            while not self.stopping:
                self._fetch()
                self._enforce_time_limits()
            self._drain()
        finally:
            self.executor.stop()
            self.settler.stop()
            # Threads left inside released tasks: return at once, so the process can exit and
            # the window in which such a thread overlaps the task's next holder stays short.
            join = not self.executor.busy_threads()
            for service in self.services:
                service.stop(join=join)
            self._returned.set()
            self._log_exit()
        return EXIT_RESTART if self._restart else EXIT_OK

    def _log_exit(self) -> None:
        """The exit line: why, after how long, and what became of the tasks."""
        ran = time.monotonic() - (self.started_at or time.monotonic())
        counts = self.events.counts
        shown = [f"{counts[ev.SUCCEEDED]} succeeded"] + [
            f"{n} {kind.replace('_', ' ') if kind != ev.ERROR else 'failed'}"
            for kind in ev.OUTCOMES[1:] if (n := counts[kind])
        ]  # fmt: skip
        log.info("stopped (%s) after %.1f s%s: %s", self.stop_reason or "an error",
                 ran, ", restarting" if self._restart else "", ", ".join(shown))  # fmt: skip

    def _guard(self) -> None:
        """Call `on_overrun` if a stop outlives its drain deadline by OVERRUN_GRACE_S."""
        self._stopped.wait()
        assert self._stop_at is not None and self.on_overrun is not None
        overrun_at = self._stop_at + self.drain_timeout + OVERRUN_GRACE_S
        if self._returned.wait(max(0.0, overrun_at - time.monotonic())):
            return
        left = len(self.inflight)
        if left:
            log.error("the drain deadline passed %.1f s ago and a storage call still hangs: "
                      "exiting; %d task(s) run again when their leases expire",
                      OVERRUN_GRACE_S, left)  # fmt: skip
        else:
            log.warning("the drain deadline passed %.1f s ago and a storage call still hangs: "
                        "exiting; no task was left unsettled", OVERRUN_GRACE_S)  # fmt: skip
        self.on_overrun(left)

    def _fetch(self) -> None:
        if self.policy.claims_in_doubt.is_set():
            self._hand_back_orphans()
        if self.isolation.active:
            self.isolation.step()
            self.inflight.wait_below(len(self.inflight), self.poll)
            return
        free = self.workers - len(self.inflight)
        if free <= 0:
            self.inflight.wait_below(self.workers, self.poll)
            return
        asked = time.monotonic()
        try:
            leases = self._claim(free)
        except Exception as exc:
            self.policy.claims_in_doubt.set()
            self._storage_error(exc)
            return
        self._idle = not leases
        self._storage_ok()
        for lease in leases:
            ctx = self._new_context(lease, asked)
            self.inflight.add(ctx)
            self._admit(ctx)

    def _admit(self, ctx: TaskContext) -> None:
        """Hand a newly claimed attempt (in flight) on to run — or, when its task is revoked,
        end it revoked without running it."""
        lease = ctx.lease
        why = self.revocations.check(lease, lease.expires - self.lease)
        if why is None:
            self.isolation.admit(ctx)
        else:
            self.settler.put(ctx, Outcome.undeliverable(REVOKED, why))

    def _hand_back_orphans(self) -> None:
        """Give back the leases that a claim whose reply was lost gave this consumer: no
        worker runs them, and each would wait a whole lease, then come back as a crash. Only
        while no claim of ours is in flight, so that every lease we hold is in `inflight`."""
        with self.settler.claims_paused(HAND_BACK_WAIT_S) as quiet:
            if not quiet:
                return  # the next pass tries again
            self.policy.claims_in_doubt.clear()
            try:
                handed = self.storage.hand_back(self.id, self.queues, self.inflight.tokens())
            except NotImplementedError:
                return
            except Exception as exc:
                self.policy.claims_in_doubt.set()
                log.warning("could not hand back leases of lost claim replies yet: %r", exc)
                return
        if handed:
            log.warning("handed back %d task(s) that a claim with a lost reply had leased to "
                        "this consumer; other consumers may run them now", handed)  # fmt: skip

    def _claim(self, free: int) -> list[Lease]:
        """Up to `free` tasks; after a claim that found none, wait for work before claiming.
        The first claim stores the app's task limits before it (`Storage.set_limits`)."""
        if not self._limits_stored:
            self.storage.set_limits([task.limit for task in self.app.tasks.values()])
            self._limits_stored = True
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
                            printable(ctx.task_id), printable(ctx.task_name))  # fmt: skip
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

        An attempt being settled (its outcome on the way) is left to land, and a task that
        write claimed next is handed back in turn. The storage may be unreachable: retrying
        stops after RELEASE_TIMEOUT_S, so the consumer still exits; such a task is recovered
        when its lease expires.
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
                      "failed it runs again when its lease expires", printable(ctx.task_id),
                      printable(ctx.task_name))  # fmt: skip

    def _hand_back(self, ctx: TaskContext, *, running: bool) -> None:
        """Release one attempt, held off for HOLD_OFF_S while a thread of ours still runs it."""
        hold_off = HOLD_OFF_S if running and not self.executor.stops_tasks else 0.0
        reason = "consumer shutdown"
        if hold_off:
            reason += f": {HELD_OFF}, claimable in {hold_off:g} s"
        self.settler.hand_back(ctx, reason, hold_off)

    @property
    def abandoned_threads(self) -> int:
        """Worker threads still inside task code after `run()` returned."""
        return self.executor.busy_threads()

    # -- failures --------------------------------------------------------------------------

    def _lost(self, ctx: TaskContext, found_by: str, why: str) -> None:
        """The lease is gone, or may be (`found_by` the heartbeat or the fence): stop the
        attempt as hard as the executor can (G2); its writes are refused."""
        if ctx.lease_lost:
            return
        ctx.lease_lost = True
        self.executor.fence(ctx)
        self.events.emit(ev.LEASE_LOST, ctx, reason=found_by, detail=why)
        if self.app.signals:
            ref = sig.TaskRef(ctx.task_id, ctx.task_name, ctx.lease.queue, attempt=ctx.attempt)
            self.app.signals.send(sig.SIGNAL_LEASE_LOST, ref, found_by)

    def _storage_error(self, exc: Exception) -> None:
        outages.ERRORS.add()
        if not self._storage_failing:
            log.error("storage unavailable at %s, retrying with backoff: %s",
                      printable(self.storage.url), one_line(exc))  # fmt: skip
            self._storage_failing = True
        self._backoff = min(max(self._backoff * 2, 0.1), ERROR_BACKOFF_MAX_S)
        time.sleep(self._backoff)

    def _storage_ok(self) -> None:
        if self._storage_failing:
            log.warning("storage reachable again")
            self._storage_failing = False
        self._backoff = 0.0


def where(storage: Storage) -> str:
    """The storage's URL for a log line: without its password, and a SQLite file by its
    absolute path (a relative one depends on the directory each process started in)."""
    url = storage.url
    path = getattr(storage, "path", None)
    if url.startswith("sqlite:") and isinstance(path, str):
        url = f"sqlite:///{os.path.abspath(path)}"
    return printable(redact(url))


def _queues_of(app: Scoter) -> list[str]:
    return sorted({task.queue for task in app.tasks.values()} | {app.default_queue})


def check_limits(app: Scoter) -> None:
    """Refuse an app with limited tasks on a storage that keeps no limits (a Redis Cluster)."""
    named = sorted(task.name for task in app.tasks.values() if limited(task.limit))
    if named and not app.storage.coordination:
        raise ConfigurationError(
            f"tasks {', '.join(named)} have concurrency or rate limits, which "
            f"{printable(app.storage.url)} does not keep: a single Redis server (redis://), "
            "SQLite or PostgreSQL keep them"
        )


def check_options(
    *,
    workers: int,
    lease: float,
    heartbeat: float,
    drain_timeout: float,
    stop_grace: float,
    poll: float,
    schedule_interval: float,
    rescue_interval: float | None,
    prefetch: int | None,
    executor: str,
) -> None:
    """Refuse option values that would break a guarantee, naming the option and the fix."""
    if executor not in EXECUTORS:
        raise ValueError(f"executor (-k) must be one of {', '.join(EXECUTORS)}, not {executor!r}")
    _at_least("workers (-w/--workers)", workers, 1)
    _at_least("prefetch (--prefetch)", prefetch or 0, 0)
    durations = {
        "lease (--lease)": lease, "heartbeat (--heartbeat)": heartbeat, "poll": poll,
        "schedule_interval": schedule_interval, "rescue_interval": rescue_interval,
    }  # fmt: skip
    for name, value in durations.items():
        if value is not None and not (math.isfinite(value) and value > 0):
            raise ValueError(f"{name} must be a number of seconds above 0, not {value!r}")
    _at_least("drain_timeout (--drain-timeout)", drain_timeout, 0)
    _at_least("stop_grace", stop_grace, 0)
    if heartbeat > lease / 2:
        suggested = math.floor(lease / 3 * 100) / 100  # rounded down: it must pass this check
        raise ValueError(
            f"heartbeat (--heartbeat, {heartbeat:g} s) must be at most half the lease "
            f"(--lease, {lease:g} s), so that a lease outlives one failed renewal: give "
            f"--heartbeat {suggested:g} or less, or leave it out (lease / 3)"
        )


def _at_least(name: str, value: float, least: float) -> None:
    if not (math.isfinite(value) and value >= least):
        raise ValueError(f"{name} must be at least {least:g}, not {value!r}")
