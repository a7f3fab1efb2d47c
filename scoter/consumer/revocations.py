"""Revocations: a consumer's copy of what to revoke, never more than REFRESH_S old.

The service reads `Storage.revocations()` every REFRESH_S (and once before the consumer claims
anything). An attempt running here whose task was revoked by id is asked to stop
(`ctx.stop_requested`; a process executor's child hears SIGTERM) and, however it ends, the
task ends dead `revoked` (the settler sees `ctx.revoked`). Every newly claimed task passes
`check` before it reaches the executor: revoked by id while an earlier attempt ran, or its
name revoked, it ends dead `revoked` without running. A re-run (attempt > 1) reads the
revocations again when the copy is older than FRESH_S: a task revoked while it ran may be
claimed again at once (released by a stopping consumer, rescued after a crash).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from scoter.consumer.inflight import InFlight
from scoter.consumer.service import Service
from scoter.context import TaskContext
from scoter.display import printable
from scoter.revocation import REFRESH_S, WHILE_RUNNING, revoked_because
from scoter.storage.base import Lease, Revocations, Storage

log = logging.getLogger("scoter.consumer")

FRESH_S = 0.05
"""A copy younger than this is fresh enough for a re-run."""


class RevocationWatch(Service):
    name = "revocations"

    def __init__(
        self,
        storage: Storage,
        inflight: InFlight,
        on_revoked: Callable[[TaskContext], None],
        interval: float = REFRESH_S,
    ) -> None:
        """
        :param on_revoked: asks a running attempt to stop (the executor's `request_stop`).
        """
        super().__init__(interval)
        self.storage = storage
        self.inflight = inflight
        self.on_revoked = on_revoked
        self._known = Revocations()
        self._read_at = float("-inf")
        self._lock = threading.Lock()

    def start(self) -> None:
        """Read the revocations before the first claim, then every `interval`."""
        try:
            self.refresh()
        except Exception as exc:
            self._report(exc)
        super().start()

    def tick(self) -> None:
        self.refresh()
        ids = self._known.ids
        if not ids:
            return
        for ctx in self.inflight.contexts():
            if ctx.task_id in ids and ctx.revoked is None and not ctx.settled:
                ctx.revoked = WHILE_RUNNING
                log.info("task %s (%s) revoked while it runs: stop requested",
                         printable(ctx.task_id), printable(ctx.task_name))  # fmt: skip
                self.on_revoked(ctx)

    def refresh(self) -> None:
        known = self.storage.revocations()
        with self._lock:
            self._known, self._read_at = known, time.monotonic()

    def check(self, lease: Lease, claimed_at: float) -> str | None:
        """Why the task just claimed (at `claimed_at`, the storage's clock) must end revoked
        without running; None when it may run."""
        if lease.attempt > 1 and time.monotonic() - self._read_at > FRESH_S:
            try:
                self.refresh()
            except Exception as exc:
                self._report(exc)
        return revoked_because(self._known, lease, claimed_at, self._take)

    def _take(self, name: str) -> bool:
        """Take a `revoke_once` revocation: True for the one consumer whose delete took it."""
        with self._lock:  # one try per copy: a later claim here finds it gone
            names = dict(self._known.names)
            names.pop(name, None)
            self._known = Revocations(names, self._known.ids)
        try:
            return self.storage.take_revocation(name)
        except Exception as exc:  # left for another run: revoking fails open, nothing is lost
            log.warning("could not take the revocation of %s: %r", printable(name), exc)
            return False
