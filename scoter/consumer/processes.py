"""The process executor: tasks run in child processes, one task per child at a time.

While tasks are short, each child is sent its next lease ahead, so it never waits for this
process between tasks; a lease waiting behind a task that turns out long is taken back for
another child.

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
import math
import multiprocessing
import os
import signal
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from typing import Any

from scoter.consumer import child as child_main
from scoter.consumer.attempt import LOST_BEFORE_START, Outcome
from scoter.consumer.executor import Settle
from scoter.consumer.settler import SHORT_TASK_S
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
    sent: deque[TaskContext] = field(default_factory=deque)
    """The attempts sent to the child, in the order it runs them: the first runs."""
    head_since: float = 0.0
    """When the first of `sent` started (time.monotonic())."""
    last_ran_s: float = math.inf
    """How long the child's last task ran: a lease is sent ahead only while tasks are short."""
    returning: bool = False
    """Asked to send back the leases it has not started."""
    killed_for: str | None = None
    gone: bool = False

    @property
    def running(self) -> TaskContext | None:
        return self.sent[0] if self.sent else None


class ProcessExecutor:
    """Runs attempts in `workers` spawned child processes that import the app by its path."""

    stops_tasks = True

    def __init__(
        self, app_path: str, workers: int, lease_s: float, settle: Settle, *, ahead: bool = True
    ) -> None:
        """
        :param lease_s: the consumer's lease, which bounds a child's checkpoint retries.
        :param settle: where each attempt's outcome goes (the settler's `put`).
        :param ahead: send a child its next lease while its tasks are short, so that it
            never waits for this process between them.
        """
        self.app_path = app_path
        self.workers = workers
        self.lease_s = lease_s
        self.settle = settle
        self.depth = 2 if ahead else 1
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
        """Tell the task (SIGTERM to its child sets `ctx.stop_requested` there); a task sent
        ahead hears it when it starts."""
        ctx.request_stop()
        self._signal(ctx, signal.SIGTERM, None)

    def time_out(self, ctx: TaskContext) -> None:
        """Kill the child past the time limit; the attempt is settled as timed out."""
        ctx.time_out()
        self._signal(ctx, signal.SIGKILL, KILLED_FOR_TIMEOUT)

    def fence(self, ctx: TaskContext) -> None:
        """Kill the child running the attempt; one waiting in a child is asked back."""
        ctx.request_stop()
        self._signal(ctx, signal.SIGKILL, KILLED_FOR_FENCE)

    def abandon(self) -> None:
        """At the drain deadline: kill the children still running a task, and wait while the
        monitor settles each — acked when its outcome arrived first, else released."""
        self._abandoning = True  # no replacements, no new attempts from here on
        busy = [c for c in list(self._children) if c.sent and not c.gone]
        for child in busy:
            child.killed_for = KILLED_FOR_SHUTDOWN
            _kill(child.process, signal.SIGKILL)
        give_up_at = time.monotonic() + JOIN_S
        while any(c.sent for c in busy) and time.monotonic() < give_up_at:
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
                self._serve(wait(self._watched(), self._wait_s()))
                self._take_back_waiting()
            except Exception:
                log.exception("process executor: monitor error")

    def _watched(self) -> list[Connection | int]:
        live = [c for c in self._children if not c.gone]
        return [self._wake_read, *(c.conn for c in live), *(c.process.sentinel for c in live)]

    def _wait_s(self) -> float:
        """Short while a lease waits behind a running task: it may have to be taken back."""
        return SHORT_TASK_S if any(len(c.sent) > 1 for c in self._children) else WAIT_S

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
        """Send waiting attempts: to idle children first, then one ahead to each child
        whose tasks are short."""
        for depth in range(1, self.depth + 1):
            for child in self._children:
                if len(child.sent) < depth and self._may_send(child):
                    with self._lock:
                        if not self._pending:
                            return
                        ctx = self._pending.popleft()
                    self._assign(child, ctx)

    def _may_send(self, child: _Child) -> bool:
        if not child.ready or child.gone or child.returning:
            return False
        if not child.sent:
            return True
        short = child.last_ran_s < SHORT_TASK_S
        return short and time.monotonic() - child.head_since < SHORT_TASK_S

    def _assign(self, child: _Child, ctx: TaskContext) -> None:
        if self._abandoning or not ctx.begin():
            return  # the consumer hands it back
        if ctx.lease_lost:
            self.settle(ctx, Outcome.interrupted(LOST_BEFORE_START))
            return
        child.sent.append(ctx)
        if len(child.sent) == 1:
            child.head_since = time.monotonic()
        else:
            ctx.deadline = None  # its time limit runs once it starts
        try:
            child_main.send(child.conn, (child_main.LEASE, ctx.lease, self.lease_s))
        except (OSError, ValueError):
            self._died(child)

    def _take_back_waiting(self) -> None:
        """A lease sent ahead of a task that turned out long is asked back, so that an idle
        child, or at a stop another consumer, runs it instead."""
        now = time.monotonic()
        for child in self._children:
            waiting = len(child.sent) > 1 and not (child.returning or child.gone)
            if waiting and now - child.head_since >= SHORT_TASK_S:
                self._ask_back(child)

    def _ask_back(self, child: _Child) -> None:
        """Ask the child to send back the leases it has not started."""
        if not child.returning:
            child.returning = True
            with contextlib.suppress(OSError, ValueError):
                child_main.send(child.conn, (child_main.RETURN,))

    # -- what children tell us -------------------------------------------------------------

    def _receive(self, child: _Child) -> None:
        try:
            while child.conn.poll():
                self._take(child, child_main.receive(child.conn))
        except (EOFError, OSError):
            self._died(child)

    def _take(self, child: _Child, message: tuple[Any, ...]) -> None:
        kind = message[0]
        if kind == child_main.READY:
            child.ready = True
        elif kind == child_main.RETURNED:
            self._returned(child, set(message[1]))
        else:
            _, token, outcome, lease_lost = message
            ctx = next((c for c in child.sent if c.token == token), None)
            if ctx is None:
                return
            head = child.running
            child.sent.remove(ctx)
            ctx.lease_lost = ctx.lease_lost or lease_lost
            child.last_ran_s = outcome.ran_s
            if child.running is not head:
                self._next_runs(child)
            self.settle(ctx, outcome)

    def _returned(self, child: _Child, tokens: set[str]) -> None:
        """The child sent back leases it had not started: they wait for the next free child."""
        child.returning = False
        back = [ctx for ctx in child.sent if ctx.token in tokens]
        if not back:
            return
        head = child.running
        child.sent = deque(ctx for ctx in child.sent if ctx.token not in tokens)
        for ctx in back:
            ctx.unbegin()
        with self._lock:
            self._pending.extendleft(reversed(back))
        if child.running is not head:
            self._next_runs(child)

    def _next_runs(self, child: _Child) -> None:
        """The child starts the next of its attempts (if any): its clock starts now."""
        child.head_since = time.monotonic()
        ctx = child.running
        if ctx is None:
            return
        ctx.start_clock()
        if child.gone:
            return
        if ctx.lease_lost:  # lost while it waited, and the child started it before giving it back
            child.killed_for = KILLED_FOR_FENCE
            _kill(child.process, signal.SIGKILL)
        elif ctx.stop_requested:  # asked while it waited
            _kill(child.process, signal.SIGTERM)

    def _died(self, child: _Child) -> None:
        if child.gone:
            return
        child.gone = True
        child.process.join(JOIN_S)
        self._take_last_words(child)
        if child.sent:
            self._settle_death(child.sent.popleft(), child)
        self._reassign_unstarted(child)
        child.conn.close()
        self._children.remove(child)
        if not (self._stopping.is_set() or self._abandoning):
            self._spawn()

    def _take_last_words(self, child: _Child) -> None:
        """Outcomes the child sent before it died still settle their attempts."""
        with contextlib.suppress(EOFError, OSError):
            while child.sent and child.conn.poll():
                self._take(child, child_main.receive(child.conn))

    def _reassign_unstarted(self, child: _Child) -> None:
        """Attempts sent ahead to a child that died never started: another child runs them,
        or at the drain deadline the consumer hands them back."""
        unstarted, child.sent = list(child.sent), deque()
        for ctx in unstarted:
            ctx.unbegin()
        with self._lock:
            self._pending.extendleft(reversed(unstarted))

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
        """Signal the child running `ctx`; while it waits behind another task there, ask the
        child to give it back instead when it is to be killed."""
        for child in list(self._children):
            if child.gone or ctx not in child.sent:
                continue
            if child.running is ctx:
                if reason is not None:
                    child.killed_for = reason
                _kill(child.process, signum)
            elif signum == signal.SIGKILL:
                self._ask_back(child)


def _kill(process: BaseProcess, signum: int) -> None:
    if process.pid is not None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(process.pid, signum)


def _send_quietly(conn: Connection, message: object) -> bool:
    try:
        conn.send(message)
    except (OSError, ValueError):
        return False
    return True


def _describe(exitcode: int | None) -> str:
    if exitcode is not None and exitcode < 0:
        return f"was killed by {signal.Signals(-exitcode).name}"
    return f"exited with code {exitcode}"
