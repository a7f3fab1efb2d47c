"""Deadlines for calls on a client that has none of its own (psycopg waits for a reply as long
as the socket stays open, and a network partition keeps it open).

A watchdog thread shuts down the socket of a call that outlives its deadline; the call then
fails as a lost connection does, which the storage treats as an outage. Only a call still
registered is shut, under the lock its end takes to unregister: so the socket is still the
call's own and never one a later connection reused the descriptor for.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass


@dataclass(eq=False, slots=True)
class Call:
    deadline: float
    fileno: int
    expired: bool = False
    """The watchdog shut the call's socket down: its error means the deadline passed."""


class Deadlines:
    """Bounds calls on sockets to `seconds` each."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._calls: set[Call] = set()
        self._changed = threading.Condition()
        self._watchdog: threading.Thread | None = None
        self._pid = os.getpid()

    @contextlib.contextmanager
    def call(self, fileno: int) -> Iterator[Call]:
        """Bound the call made inside the block on the socket `fileno`."""
        call = Call(time.monotonic() + self.seconds, fileno)
        with self._changed:
            self._start_watchdog()
            self._calls.add(call)
            if len(self._calls) == 1:  # later calls never have an earlier deadline
                self._changed.notify()
        try:
            yield call
        finally:
            with self._changed:
                self._calls.discard(call)

    def _start_watchdog(self) -> None:
        if self._watchdog is None or self._pid != os.getpid():  # a fork has no watchdog
            self._pid = os.getpid()
            self._watchdog = threading.Thread(
                target=self._watch, name="scoter-deadlines", daemon=True
            )
            self._watchdog.start()

    def _watch(self) -> None:
        with self._changed:
            while True:
                now = time.monotonic()
                for call in [c for c in self._calls if c.deadline <= now]:
                    self._calls.discard(call)
                    call.expired = True
                    _shut(call.fileno)
                soonest = min((c.deadline for c in self._calls), default=None)
                self._changed.wait(None if soonest is None else soonest - now)


def _shut(fileno: int) -> None:
    """Shut the socket down for both directions; its owner closes it."""
    with contextlib.suppress(OSError):
        sock = socket.socket(fileno=os.dup(fileno))
        try:
            sock.shutdown(socket.SHUT_RDWR)
        finally:
            sock.close()
