"""The body of a process-executor child: receive a lease, run the task, send the outcome back.

The child holds no lease and sends no heartbeat — the parent does both, so a task that holds
the GIL or hogs the CPU cannot starve them. It writes only fenced checkpoints and progress.
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
from multiprocessing.connection import Connection
from types import FrameType
from typing import TYPE_CHECKING, Any

from scoter.consumer import attempt
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
"""child → parent: (OUTCOME, outcome, lease_lost)."""


def send(conn: Connection, message: object) -> None:
    """Messages travel as plain pickles: quicker than `Connection.send`'s pickler."""
    conn.send_bytes(pickle.dumps(message, pickle.HIGHEST_PROTOCOL))


def receive(conn: Connection) -> Any:
    return pickle.loads(conn.recv_bytes())


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
    app.hooks.worker_started()
    send(conn, (READY,))
    while (work := receive(conn)) is not None:
        flag.signalled.clear()
        lease, lease_s = work
        send(conn, _run(app, lease, lease_s, flag))


def _run(app: Scoter, lease: Lease, lease_s: float, flag: _StopFlag) -> tuple[str, object, bool]:
    ctx = attempt.new_context(app, lease, lease_s)
    flag.current = ctx
    try:
        outcome = attempt.execute(app, ctx)
    finally:
        flag.current = None
    return (OUTCOME, outcome, ctx.lease_lost)  # pickled without its exception
