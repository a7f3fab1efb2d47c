"""The scheduler: promotes scheduled tasks (eta, delay, retry backoff) to queued when due, and
enqueues each slot of the app's periodic tasks.

Every consumer runs it and none is special: a slot is enqueued by the one compare-and-set
that advances its schedule's stored last slot (`Storage.enqueue_slot`), so however many
consumers see a slot come due, one enqueues it and the others find the slot moved on.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

from scoter.consumer.service import Service
from scoter.storage.base import Storage

if TYPE_CHECKING:
    from scoter.app import Scoter
    from scoter.periodic import Periodic

log = logging.getLogger("scoter.consumer")


class Scheduler(Service):
    name = "scheduler"

    def __init__(self, storage: Storage, interval: float, app: Scoter | None = None) -> None:
        super().__init__(interval)
        self.storage = storage
        self.app = app

    def tick(self) -> None:
        self.storage.promote(time.time())
        if self.app is not None and self.app.periodic:
            enqueue_due_slots(self.app, self.storage, time.time())


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
