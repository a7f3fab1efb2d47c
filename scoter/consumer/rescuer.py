"""The rescuer: recovers tasks whose holder died (lease expired, no release), and expires results.

A rescued task that ran alone is queued again, counting a crash, or quarantined as dead with
reason `crashed` once it reached `max_crashes` — so a task that kills its consumer cannot take
the fleet down. One that ran beside other tasks is charged nothing and runs alone next
(`scoter.consumer.isolation`).
"""

from __future__ import annotations

import time

from scoter import signals as sig
from scoter.consumer import events as ev
from scoter.consumer.service import Service
from scoter.states import State
from scoter.storage.base import Storage

RESULT_EXPIRY_EVERY_S = 60.0


class Rescuer(Service):
    name = "rescuer"

    def __init__(
        self, storage: Storage, signals: sig.Signals, interval: float, events: ev.Events
    ) -> None:
        super().__init__(interval)
        self.storage = storage
        self.signals = signals
        self.events = events
        self._next_expiry = 0.0

    def tick(self) -> None:
        now = time.time()
        for rescued in self.storage.rescue(now):
            dead = rescued.state is State.DEAD
            if rescued.charged:
                what = "dead: max_crashes reached" if dead else "queued again"
                detail = f"its holder's lease expired unreleased (crash {rescued.crashes}), {what}"
            else:
                detail = ("its holder's lease expired while it ran other tasks too: not "
                          "charged, queued again to run alone")  # fmt: skip
            self.events.emit_rescued(ev.CRASHED, rescued, detail)
            if dead:
                self.events.emit_rescued(ev.DEAD, rescued, detail)
            ref = sig.TaskRef(rescued.id, rescued.name, "")
            self.signals.send(sig.SIGNAL_RESCUED, ref, rescued.state.value)
            if dead:
                self.signals.send(sig.SIGNAL_DEAD, ref, "crashed")
        if now >= self._next_expiry:
            self.storage.expire_results(now)
            self._next_expiry = now + RESULT_EXPIRY_EVERY_S
