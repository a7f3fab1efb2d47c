"""The scheduler: promotes scheduled tasks (eta, delay, retry backoff) to queued when due, and
enqueues each slot of the app's periodic tasks.

It sleeps until the earliest thing due — the earliest eta in storage (`Storage.next_eta`), the
next slot of a periodic task, a retry this consumer just scheduled (`nudge`) — and at most
`interval` seconds. While asleep it looks again for an earlier eta every WATCH_S (one index
lookup), so a task another process schedules is promoted on time too; promotion wakes the idle
fetchers of every consumer, which claim it at once. So a scheduled task starts within
milliseconds of its eta on an idle consumer, not on the next tick of a clock.

Every consumer runs it and none is special: a slot is enqueued by the one compare-and-set
that advances its schedule's stored last slot (`Storage.enqueue_slot`), so however many
consumers see a slot come due, one enqueues it and the others find the slot moved on.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

from scoter.consumer.service import Service
from scoter.storage import outages
from scoter.storage.base import Storage

if TYPE_CHECKING:
    from scoter.app import Scoter
    from scoter.periodic import Periodic

log = logging.getLogger("scoter.consumer")

T = TypeVar("T")

WATCH_S = 0.1
"""How often a sleeping scheduler looks for an eta earlier than the one it sleeps until: a
task another process schedules less than this ahead may start up to this late."""
TICK_GAP_S = 0.01
"""The least time between two promotions: an eta still due right after one (a row another
consumer's promotion holds) is tried again this much later, not in a busy loop."""


class Scheduler(Service):
    name = "scheduler"

    def __init__(
        self, storage: Storage, interval: float, app: Scoter | None = None, watch: float = WATCH_S
    ) -> None:
        """
        :param interval: the longest time between two promotions.
        :param watch: how often a sleeping scheduler looks for an earlier eta.
        """
        super().__init__(interval)
        self.storage = storage
        self.app = app
        self.watch = watch
        self._nudged = threading.Event()
        self._due = 0.0
        """When the next promotion is due (time.time())."""
        self._next_slot = math.inf
        """The earliest next slot of the app's periodic tasks."""

    def tick(self) -> None:
        now = time.time()
        self.storage.promote(now)
        if self.app is not None and self.app.periodic:
            enqueue_due_slots(self.app, self.storage, now)
            t = int(now)
            self._next_slot = min(p.schedule.following(t) for p in self.app.periodic.values())

    def nudge(self, eta: float) -> None:
        """A task was scheduled at `eta` by this process (a retry's backoff): promote it then."""
        if eta < self._due:
            self._due = eta
            self._nudged.set()

    def stop(self, join: bool = True) -> None:
        self._stopped.set()
        self._nudged.set()
        super().stop(join)

    def _loop(self) -> None:
        while not self._stopped.is_set():
            self._nudged.clear()  # a nudge from here on wakes the wait below
            now = time.time()
            if now >= self._due:
                self._guarded(self.tick)
                self._due = max(now + self.interval, now + TICK_GAP_S)
                self._due = min(self._due, max(self._next_slot, now + TICK_GAP_S))
            earliest = self._guarded(self.storage.next_eta)
            if earliest is not None:
                self._due = min(self._due, max(earliest, now + TICK_GAP_S))
            self._nudged.wait(max(0.0, min(self._due - time.time(), self.watch)))

    def _guarded(self, call: Callable[[], T]) -> T | None:
        """`call()`; a failure is logged once per change of state (as Service's ticks are)
        and returns None."""
        try:
            result = call()
        except Exception as exc:
            outages.ERRORS.add()
            self._report(exc)
            return None
        finally:
            self.ticked_at = time.monotonic()
        self.ok_at = self.ticked_at
        if self._failing:
            log.warning("%s recovered", self.name)
            self._failing = False
        return result


def enqueue_due_slots(app: Scoter, storage: Storage, now: float) -> int:
    """Enqueue the due slots of every periodic task of `app` at `now`; returns how many
    schedules this call advanced (a schedule another caller advanced first is left to it)."""
    schedules = list(app.periodic.values())
    lasts = storage.last_slots([p.name for p in schedules])
    return sum(_advance(app, storage, p, lasts.get(p.name), now) for p in schedules)


def _advance(
    app: Scoter, storage: Storage, periodic: Periodic, last: int | None, now: float
) -> bool:
    plan = periodic.plan(last, now)
    if plan is None:
        return False
    slot, slots = plan
    tasks = [app.slot_task(periodic.name, s) for s in slots]
    advanced = storage.enqueue_slot(periodic.name, last, slot, tasks)
    if advanced and len(slots) != 1:
        log.info(
            "periodic %s: %d slot(s) enqueued up to %s (missed-slot policy)",
            periodic.name, len(slots), slot,
        )  # fmt: skip
    return advanced
