"""The process executor: tasks run in child processes, one task per child at a time.

The parent keeps the leases: it heartbeats them (so CPU-bound or GIL-holding tasks cannot starve
the heartbeat), hands every outcome to the settler, and watches each child; the monitor thread
never writes, so a storage outage does not stop it handing out work or noticing dead
children. When a child dies mid-task — SIGKILL, the OOM killer, a segfault — the parent sees
it at once, records the attempt as a crash with the signal that ended it (counted against
`max_crashes`), requeues the task without waiting for the lease to expire, and starts a new
child. Time limits kill the child; the attempt counts as an error.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import signal
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from typing import Any

from scoter.consumer import child as child_main
from scoter.consumer.attempt import LOST_BEFORE_START, Outcome
from scoter.consumer.executor import Settle
from scoter.context import TaskContext
from scoter.exceptions import TimedOut

log = logging.getLogger("scoter.consumer")

WAIT_S = 0.1
JOIN_S = 5.0

KILLED_FOR_TIMEOUT = "timeout"
KILLED_FOR_SHUTDOWN = "shutdown"
KILLED_FOR_FENCE = "lease lost"
KILLED_AT_DEADLINE = "its worker process was killed at the drain deadline"
"""In the history detail of a task released because its child was killed at the deadline."""


@dataclass(eq=False)
class _Child:
    process: BaseProcess
    conn: Connection
    ready: bool = False
    ctx: TaskContext | None = None
    killed_for: str | None = None
    gone: bool = False


class ProcessExecutor:
    """Runs attempts in `workers` spawned child processes that import the app by its path."""

    stops_tasks = True

    def __init__(self, app_path: str, workers: int, lease_s: float, settle: Settle) -> None:
        """
        :param lease_s: the consumer's lease, which bounds a child's checkpoint retries.
        :param settle: where each attempt's outcome goes (the settler's `put`).
        """
        self.app_path = app_path
        self.workers = workers
        self.lease_s = lease_s
        self.settle = settle
        self._mp = multiprocessing.get_context("spawn")
        self._children: list[_Child] = []
        self._pending: deque[TaskContext] = deque()
        self._lock = threading.Lock()
        self._wake_read, self._wake_write = self._mp.Pipe(duplex=False)
        self._woken = False
        """A wake-up is on its way to the monitor: submits need not send another."""
        self._stopping = threading.Event()
        self._abandoning = False
        self._monitor = threading.Thread(target=self._loop, name="scoter-children", daemon=True)

    # -- the executor interface ------------------------------------------------------------

    def start(self) -> None:
        for _ in range(self.workers):
            self._spawn()
        self._monitor.start()

    def submit(self, ctx: TaskContext) -> None:
        with self._lock:
            self._pending.append(ctx)
            wake, self._woken = not self._woken, True
        if wake:  # one wake-up for every task submitted until the monitor looks
            self._wake_write.send_bytes(b".")

    def request_stop(self, ctx: TaskContext) -> None:
        """Tell the task (SIGTERM to its child sets `ctx.stop_requested` there)."""
        ctx.request_stop()
        self._signal(ctx, signal.SIGTERM, None)

    def time_out(self, ctx: TaskContext) -> None:
        """Kill the child past the time limit; the attempt is settled as timed out."""
        ctx.time_out()
        self._signal(ctx, signal.SIGKILL, KILLED_FOR_TIMEOUT)

    def fence(self, ctx: TaskContext) -> None:
        """Kill the child running the attempt (one not sent to a child yet never starts)."""
        ctx.request_stop()
        self._signal(ctx, signal.SIGKILL, KILLED_FOR_FENCE)

    def abandon(self) -> None:
        """At the drain deadline: kill the children still running a task, and wait while the
        monitor settles each — acked when its outcome arrived first, else released."""
        with self._lock:  # no replacements, no new attempts from here on
            self._abandoning = True
            busy = [c for c in list(self._children) if c.ctx is not None and not c.gone]
        for child in busy:
            child.killed_for = KILLED_FOR_SHUTDOWN
            _kill(child.process, signal.SIGKILL)
        give_up_at = time.monotonic() + JOIN_S
        while any(c.ctx is not None for c in busy) and time.monotonic() < give_up_at:
            time.sleep(0.01)
        self._stopping.set()

    def stop(self) -> None:
        """End every child at once. A child holds nothing of its own (this process holds the
        leases and has settled every attempt), so it is killed, busy or idle: quicker than
        asking, and none may survive (multiprocessing would wait for it at exit)."""
        self._stopping.set()
        self._wake_write.send_bytes(b".")
        self._monitor.join(JOIN_S)
        children = list(self._children)
        for child in children:
            _kill(child.process, signal.SIGKILL)
        for child in children:
            child.process.join(JOIN_S)

    def busy_threads(self) -> int:
        return 0  # task code runs in children, which stop() has ended

    # -- the monitor thread ----------------------------------------------------------------

    def _spawn(self) -> None:
        parent_end, child_end = self._mp.Pipe()
        process = self._mp.Process(
            target=child_main.main, args=(self.app_path, child_end), name="scoter-child",
            daemon=True,
        )  # fmt: skip
        process.start()
        child_end.close()
        self._children.append(_Child(process, parent_end))

    def _loop(self) -> None:
        while not self._stopping.is_set():
            try:
                self._dispatch()
                self._serve(wait(self._watched(), WAIT_S))
            except Exception:
                log.exception("process executor: monitor error")

    def _watched(self) -> list[Connection | int]:
        live = [c for c in self._children if not c.gone]
        return [self._wake_read, *(c.conn for c in live), *(c.process.sentinel for c in live)]

    def _serve(self, ready: Sequence[object]) -> None:
        for obj in ready:
            if obj is self._wake_read:
                while self._wake_read.poll():
                    self._wake_read.recv_bytes()
                with self._lock:  # after the drain: a later submit wakes us again
                    self._woken = False
                continue
            child = self._owner(obj)
            if child is None or child.gone:
                continue
            if obj is child.conn:
                self._receive(child)
            else:
                self._died(child)

    def _owner(self, obj: object) -> _Child | None:
        for child in self._children:
            if obj is child.conn or obj == child.process.sentinel:
                return child
        return None

    def _dispatch(self) -> None:
        for child in self._children:
            if not (child.ready and child.ctx is None and not child.gone):
                continue
            with self._lock:
                if not self._pending:
                    return
                ctx = self._pending.popleft()
            self._assign(child, ctx)

    def _assign(self, child: _Child, ctx: TaskContext) -> None:
        with self._lock:  # `abandon` sees this child busy, or this sees it abandoning
            if self._abandoning or not ctx.begin():
                return  # the consumer hands it back
            if not ctx.lease_lost:
                child.ctx = ctx
        if ctx.lease_lost:
            self.settle(ctx, Outcome.interrupted(LOST_BEFORE_START))
            return
        if not _send_quietly(child.conn, (ctx.lease, self.lease_s)):
            self._died(child)

    # -- what children tell us -------------------------------------------------------------

    def _receive(self, child: _Child) -> None:
        try:
            message = child_main.receive(child.conn)
        except (EOFError, OSError):
            self._died(child)
            return
        self._take(child, message)

    def _take(self, child: _Child, message: tuple[Any, ...]) -> None:
        if message[0] == child_main.READY:
            child.ready = True
            return
        ctx, child.ctx = child.ctx, None
        if ctx is not None:
            _, outcome, lease_lost = message
            ctx.lease_lost = ctx.lease_lost or lease_lost
            self.settle(ctx, outcome)

    def _died(self, child: _Child) -> None:
        if child.gone:
            return
        child.gone = True
        child.process.join(JOIN_S)
        self._take_last_words(child)
        ctx, child.ctx = child.ctx, None
        if ctx is not None:
            self._settle_death(ctx, child)
        child.conn.close()
        self._children.remove(child)
        if not (self._stopping.is_set() or self._abandoning):
            self._spawn()

    def _take_last_words(self, child: _Child) -> None:
        """An outcome the child sent before it died still settles its attempt."""
        with contextlib.suppress(EOFError, OSError):
            while child.ctx is not None and child.conn.poll():
                self._take(child, child_main.receive(child.conn))

    def _settle_death(self, ctx: TaskContext, child: _Child) -> None:
        if child.killed_for == KILLED_FOR_SHUTDOWN:
            self.settle(ctx, Outcome.interrupted(f"consumer shutdown: {KILLED_AT_DEADLINE}"))
        elif child.killed_for == KILLED_FOR_FENCE:
            self.settle(ctx, Outcome.interrupted("lease lost: its worker process was killed"))
        elif child.killed_for == KILLED_FOR_TIMEOUT:
            limit = ctx.timeout
            timed_out = TimedOut(f"the task ran past its {limit} s time limit and was killed")
            self.settle(ctx, Outcome.failed(timed_out))
        else:
            detail = f"its worker process {_describe(child.process.exitcode)}"
            self.settle(ctx, Outcome.crashed(detail))

    def _signal(self, ctx: TaskContext, signum: int, reason: str | None) -> None:
        for child in list(self._children):
            if child.ctx is ctx and not child.gone:
                if reason is not None:
                    child.killed_for = reason
                _kill(child.process, signum)


def _kill(process: BaseProcess, signum: int) -> None:
    if process.pid is not None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(process.pid, signum)


def _send_quietly(conn: Connection, message: object) -> bool:
    try:
        child_main.send(conn, message)
    except (OSError, ValueError):
        return False
    return True


def _describe(exitcode: int | None) -> str:
    if exitcode is not None and exitcode < 0:
        return f"was killed by {signal.Signals(-exitcode).name}"
    return f"exited with code {exitcode}"
