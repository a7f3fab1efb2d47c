"""The body of a process-executor child: receive leases, run their tasks in order, send each
outcome back.

The child holds no lease and sends no heartbeat — the parent does both, so a task that holds
the GIL or hogs the CPU cannot starve them. It writes only fenced checkpoints and progress.
While tasks are short the parent sends a lease ahead, which waits in the child's inbox; asked
to (RETURN), the child sends back every lease it has not started, even while a task runs.
SIGINT is ignored (the parent owns the shutdown plan); SIGTERM asks the running task to stop.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import pickle
import signal
import threading
import time
from collections import deque
from multiprocessing.connection import Connection
from types import FrameType
from typing import TYPE_CHECKING

from scoter.consumer import attempt
from scoter.consumer.attempt import Outcome
from scoter.context import TaskContext
from scoter.loader import load_app
from scoter.storage.base import Lease

if TYPE_CHECKING:
    from scoter.app import Scoter

STOP_POLL_S = 0.02
PARENT_POLL_S = 0.5
PR_SET_PDEATHSIG = 1

READY = "ready"
"""child → parent: the app is loaded."""
OUTCOME = "outcome"
"""child → parent: (OUTCOME, token, outcome, lease_lost), one per lease, in order."""
RETURNED = "returned"
"""child → parent: (RETURNED, tokens), the leases it had not started."""
LEASE = "lease"
"""parent → child: (LEASE, lease, lease_s)."""
RETURN = "return"
"""parent → child: (RETURN,), send back every lease not started."""
STOP = "stop"
"""parent → child: (STOP,), exit once the running task is done."""


def send(conn: Connection, message: tuple[object, ...]) -> None:
    """Messages travel as plain pickles: quicker than `Connection.send`'s pickler."""
    conn.send_bytes(pickle.dumps(message, pickle.HIGHEST_PROTOCOL))


def receive(conn: Connection) -> tuple[object, ...]:
    message: tuple[object, ...] = pickle.loads(conn.recv_bytes())
    return message


class _Outbox:
    """The child's end of the pipe, shared by the task loop and the inbox's reader."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self._lock = threading.Lock()

    def send(self, message: tuple[object, ...]) -> None:
        with self._lock:
            send(self.conn, message)


class _Inbox:
    """Leases sent and not started yet, filled by a reader thread, which also answers RETURN
    at once, while a task runs."""

    def __init__(self, outbox: _Outbox) -> None:
        self._outbox = outbox
        self._leases: deque[tuple[Lease, float]] = deque()
        self._changed = threading.Condition()
        self._closed = False
        threading.Thread(target=self._read, name="scoter-inbox", daemon=True).start()

    def next(self) -> tuple[Lease, float] | None:
        """The next lease to run and the lease's length; None once the parent said STOP."""
        with self._changed:
            self._changed.wait_for(lambda: self._leases or self._closed)
            return self._leases.popleft() if self._leases else None

    def _read(self) -> None:
        try:
            while (message := receive(self._outbox.conn))[0] != STOP:
                if message[0] == RETURN:
                    self._return_unstarted()
                    continue
                _, lease, lease_s = message
                with self._changed:
                    self._leases.append((lease, lease_s))  # type: ignore[arg-type]
                    self._changed.notify()
        except (EOFError, OSError):
            pass  # the parent is gone: this process dies with it
        with self._changed:
            self._closed = True
            self._changed.notify()

    def _return_unstarted(self) -> None:
        with self._changed:
            tokens = [lease.token for lease, _ in self._leases]
            self._leases.clear()
        self._outbox.send((RETURNED, tokens))


class _StopFlag:
    """Set by SIGTERM (a handler only sets a flag); a watcher thread passes it to the task.

    The watcher sleeps until the flag is set, so an idle child costs no CPU.
    """

    def __init__(self) -> None:
        self.signalled = threading.Event()
        self.current: TaskContext | None = None

    def on_signal(self, _signum: int, _frame: FrameType | None) -> None:
        self.signalled.set()

    def watch(self) -> None:
        while self.signalled.wait():
            ctx = self.current
            if ctx is None:  # between tasks: the next task hears it, unless cleared first
                time.sleep(STOP_POLL_S)
                continue
            ctx.request_stop()
            self.signalled.clear()


def _die_with_parent() -> None:
    """A child must not outlive its parent: orphaned, it would run its task unleased.

    Linux kills it with the parent (PR_SET_PDEATHSIG); elsewhere a thread watches the parent.
    """
    parent = os.getppid()
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        pass
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(1)

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(PARENT_POLL_S)
        os._exit(1)

    threading.Thread(target=watch, name="scoter-parent-watch", daemon=True).start()


def main(app_path: str, conn: Connection) -> None:
    """Entry point of a child process (spawned, so it imports the app afresh)."""
    _die_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    flag = _StopFlag()
    signal.signal(signal.SIGTERM, flag.on_signal)
    threading.Thread(target=flag.watch, name="scoter-stop-watch", daemon=True).start()
    app = load_app(app_path)
    outbox = _Outbox(conn)
    inbox = _Inbox(outbox)
    outbox.send((READY,))
    while (work := inbox.next()) is not None:
        lease, lease_s = work
        outcome, lease_lost = _run(app, lease, lease_s, flag)
        # A stop request that came after the task ended was meant for it: the parent asks
        # the next task only once it has this outcome.
        flag.signalled.clear()
        outbox.send((OUTCOME, lease.token, outcome, lease_lost))


def _run(app: Scoter, lease: Lease, lease_s: float, flag: _StopFlag) -> tuple[Outcome, bool]:
    ctx = attempt.new_context(app, lease, lease_s)
    flag.current = ctx
    try:
        outcome = attempt.execute(app, ctx)
    finally:
        flag.current = None
    return outcome, ctx.lease_lost
