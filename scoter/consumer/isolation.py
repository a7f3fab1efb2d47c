"""Suspects run alone, so that a crash is charged to the task that caused it (DESIGN G4).

When a consumer dies running several tasks, the storage cannot tell which one killed it: it
charges none and marks each a suspect (`Storage.rescue`). A consumer that claims a suspect
holds it (its lease renewed) and stops claiming; once every other attempt of its own has ended
it marks the suspect as run alone (`Storage.isolate`) and starts it. A crash now is that task's
own and is charged; the tasks that ran beside a poison task never are. Claiming resumes when
the suspect's attempt has been settled.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable

from scoter.consumer.inflight import InFlight
from scoter.context import TaskContext
from scoter.display import printable
from scoter.storage.base import Storage

log = logging.getLogger("scoter.consumer")


class Isolation:
    """Between claiming and the executor: holds suspects until they can run alone."""

    def __init__(
        self, storage: Storage, inflight: InFlight, submit: Callable[[TaskContext], None]
    ) -> None:
        self.storage = storage
        self.inflight = inflight
        self.submit = submit
        self._held: deque[TaskContext] = deque()
        self._alone: TaskContext | None = None
        self._lock = threading.Lock()

    @property
    def active(self) -> bool:
        """True while a suspect waits or runs alone: the consumer claims nothing then."""
        return bool(self._held) or self._alone is not None

    def admit(self, ctx: TaskContext) -> None:
        """Hand a newly claimed attempt (already in flight) to the executor, or hold it until
        it can run alone."""
        if not ctx.lease.suspect:
            self.submit(ctx)
            return
        with self._lock:
            self._held.append(ctx)

    def step(self) -> None:
        """Called by the fetch loop while active: ends the alone phase once its attempt left
        the flight; starts the next held suspect once nothing else is in flight."""
        with self._lock:
            if self._alone is not None and self.inflight.get(self._alone.token) is None:
                self._alone = None
            if self._alone is not None or not self._held:
                return
            if len(self.inflight) > len(self._held):
                return  # other attempts still run
            ctx = self._alone = self._held.popleft()
        self._start_alone(ctx)

    def _start_alone(self, ctx: TaskContext) -> None:
        try:
            isolated = self.storage.isolate(ctx.token)
        except self.storage.transient_errors:
            with self._lock:  # try again at the next step
                self._held.appendleft(ctx)
                self._alone = None
            return
        if not isolated:
            log.warning("task %s (%s): lease lost before it could run alone",
                        printable(ctx.task_id), printable(ctx.task_name))  # fmt: skip
            self.inflight.remove(ctx)
            return
        log.info("task %s (%s) runs alone: a consumer died while it ran beside other tasks",
                 printable(ctx.task_id), printable(ctx.task_name))  # fmt: skip
        self.submit(ctx)
