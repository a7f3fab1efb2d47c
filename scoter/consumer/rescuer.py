"""The rescuer: recovers tasks whose holder died (lease expired, no release), and expires results.

A rescued task that ran alone is queued again, counting a crash, or quarantined as dead with
reason `crashed` once it reached `max_crashes` — so a task that kills its consumer cannot take
the fleet down. One that ran beside other tasks is charged nothing and runs alone next
(`scoter.consumer.isolation`).
"""

from __future__ import annotations

import logging
import time

from scoter import signals as sig
from scoter.consumer.service import Service
from scoter.display import printable
from scoter.states import State
from scoter.storage.base import Storage

log = logging.getLogger("scoter.consumer")

RESULT_EXPIRY_EVERY_S = 60.0


class Rescuer(Service):
    name = "rescuer"

    def __init__(self, storage: Storage, signals: sig.Signals, interval: float) -> None:
        super().__init__(interval)
        self.storage = storage
        self.signals = signals
        self._next_expiry = 0.0

    def tick(self) -> None:
        now = time.time()
        for rescued in self.storage.rescue(now):
            dead = rescued.state is State.DEAD
            if rescued.charged:
                what = "dead: max_crashes reached" if dead else "queued again"
                log.warning("task %s (%s): holder lost its lease (crash %d), %s",
                            printable(rescued.id), printable(rescued.name), rescued.crashes,
                            what)  # fmt: skip
            else:
                log.warning("task %s (%s): holder lost its lease while it ran other tasks too: "
                            "not charged, queued again to run alone", printable(rescued.id),
                            printable(rescued.name))  # fmt: skip
            ref = sig.TaskRef(rescued.id, rescued.name, "")
            self.signals.send(sig.SIGNAL_RESCUED, ref, rescued.state.value)
            if dead:
                self.signals.send(sig.SIGNAL_DEAD, ref, "crashed")
        if now >= self._next_expiry:
            self.storage.expire_results(now)
            self._next_expiry = now + RESULT_EXPIRY_EVERY_S
