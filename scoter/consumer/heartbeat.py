"""The heartbeat: renews all of a consumer's leases in one storage call.

It runs in its own thread and holds no task code, so a task cannot starve it (a task holding
the GIL in C code for longer than the lease can: use the process executor for those).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from scoter.consumer.inflight import InFlight
from scoter.consumer.service import Service
from scoter.context import TaskContext
from scoter.storage.base import Storage

log = logging.getLogger("scoter.consumer")


class Heartbeat(Service):
    name = "heartbeat"

    def __init__(
        self,
        storage: Storage,
        inflight: InFlight,
        lease_s: float,
        interval: float,
        on_lost: Callable[[TaskContext], None],
    ) -> None:
        super().__init__(interval)
        self.storage = storage
        self.inflight = inflight
        self.lease_s = lease_s
        self.on_lost = on_lost

    def tick(self) -> None:
        tokens = self.inflight.tokens()
        if not tokens:
            return
        for token in self.storage.heartbeat(tokens, self.lease_s):
            ctx = self.inflight.get(token)
            # Not merely acked since the snapshot: an ack on its way reports its own refusal.
            if ctx is not None and not ctx.settled and not ctx.settling:
                self.on_lost(ctx)
