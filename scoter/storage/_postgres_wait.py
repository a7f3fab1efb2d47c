"""How idle PostgreSQL consumers wake: LISTEN on a connection of the storage's own for the
NOTIFY that statements making tasks claimable send (a mixin of PostgresStorage)."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import psycopg

from scoter.storage.deadlines import Deadlines

Connection = psycopg.Connection[Any]


class PostgresWaiting:
    """`wait` of PostgresStorage."""

    _channel: str
    _listener: Connection | None
    _listen_lock: threading.Lock
    _deadlines: Deadlines

    if TYPE_CHECKING:  # PostgresStorage's

        def _settle_fork(self) -> None: ...

        def _connect_args(self) -> tuple[str, dict[str, Any]]: ...

    def wait(self, queues: Sequence[str], timeout: float) -> None:
        """Block until a NOTIFY names one of `queues` (enqueue, release, retry, promote,
        rescue, crash, requeue), or `timeout` passes. One thread of a process listens at a
        time; the others wait for it. A new listening connection returns at once: a
        notification may have been missed while it was away."""
        deadline = time.monotonic() + timeout
        self._settle_fork()
        if not self._listen_lock.acquire(timeout=timeout):
            return
        try:
            self._listen(set(queues), deadline)
        finally:
            self._listen_lock.release()

    def _listen(self, queues: set[str], deadline: float) -> None:
        conn = self._listener
        if conn is None:
            self._listener = self._connect_listener(deadline)
            return
        try:
            for note in conn.notifies(timeout=max(0.0, deadline - time.monotonic())):
                if note.payload in queues:
                    return
        except psycopg.OperationalError:
            self._close_listener()  # the next wait reconnects; the caller claims meanwhile

    def _connect_listener(self, deadline: float) -> Connection | None:
        conninfo, kwargs = self._connect_args()
        try:
            conn = psycopg.Connection.connect(conninfo, **kwargs)
            with self._deadlines.call(conn.fileno()):
                conn.execute(f'LISTEN "{self._channel}"')
        except psycopg.OperationalError:
            time.sleep(max(0.0, deadline - time.monotonic()))  # no server: the caller backs off
            return None
        return conn

    def _close_listener(self) -> None:
        if self._listener is not None:
            self._listener.close()
            self._listener = None
