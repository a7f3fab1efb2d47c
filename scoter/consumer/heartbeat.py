"""Keeping leases: the heartbeat renews them, the fence gives up those it could not renew.

The heartbeat renews all of a consumer's leases in one storage call. It runs in its own thread
and holds no task code, so a task cannot starve it (a task holding the GIL in C code for longer
than the lease can: use the process executor for those).

The fence (DESIGN G2) runs in a thread of its own too, and never calls the storage, so a
storage call that hangs through a network partition cannot hold it up: an attempt whose lease
was last renewed longer ago than the lease minus FENCE_MARGIN of it is treated as lost at
once, before the storage expires the lease and another consumer may claim the task.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from scoter.consumer.inflight import InFlight
from scoter.consumer.service import Service
from scoter.context import TaskContext
from scoter.storage.base import Storage

log = logging.getLogger("scoter.consumer")

FENCE_MARGIN = 0.1
"""The part of a lease the fence keeps in hand: time to stop the attempt before it expires."""
FENCE_TICKS = 20
"""Fence checks per lease."""
FENCE_TICK_MAX_S = 0.5


class Heartbeat(Service):
    name = "heartbeat"

    def __init__(
        self,
        storage: Storage,
        inflight: InFlight,
        lease_s: float,
        interval: float,
        on_lost: Callable[[TaskContext, str, str], None],
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
        asked = time.monotonic()
        lost = self.storage.heartbeat(tokens, self.lease_s)
        for token in tokens:
            ctx = self.inflight.get(token)
            if ctx is None:
                continue
            if token not in lost:
                ctx.renewed_at = asked
            # Not merely acked since the snapshot: an ack on its way reports its own refusal.
            elif not ctx.settled and not ctx.settling:
                self.on_lost(ctx, self.name, "the heartbeat found it held by no one or another")


class Fence(Service):
    """Gives up every running attempt whose lease the heartbeat could not renew in time."""

    name = "fence"

    def __init__(
        self, inflight: InFlight, lease_s: float, on_lost: Callable[[TaskContext, str, str], None]
    ) -> None:
        super().__init__(min(lease_s / FENCE_TICKS, FENCE_TICK_MAX_S))
        self.inflight = inflight
        self.lease_s = lease_s
        self.on_lost = on_lost

    def tick(self) -> None:
        now = time.monotonic()
        for ctx in self.inflight.contexts():
            if ctx.lease_lost or ctx.settled or ctx.settling:
                continue
            unrenewed = now - ctx.renewed_at
            if unrenewed > self.lease_s * (1 - FENCE_MARGIN):
                self.on_lost(ctx, self.name, f"its lease was not renewed for {unrenewed:.1f} s "
                                  f"(lease {self.lease_s:g} s): storage unreachable")  # fmt: skip
