"""Acknowledging and claiming the next task in one write, shared by workers (group commit).

A worker that finished a task hands its ack to `FollowUp.ack` and waits. When no write is on
its way it writes at once, alone — the latency of a single ack. Otherwise its ack joins the
next write, which the first worker queued behind the current write makes for all of them:
every queued ack and the claims of their next tasks in one `Storage.ack_many_and_claim`
(one transaction on SQLite, one script call on Redis, one statement on PostgreSQL). The more
workers finish together, the fewer writes per task.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from scoter.storage.base import Ack, Lease, Storage

MAX_BATCH = 64
"""Most acks in one write."""


def _held_lock() -> threading.Lock:
    lock = threading.Lock()
    lock.acquire()
    return lock


@dataclass(eq=False)
class _Waiter:
    ack: Ack
    want: int
    woken: threading.Lock = field(default_factory=_held_lock)
    """Released to wake the waiter (a held lock: far cheaper to make than an Event)."""
    leads: bool = False
    """Set when this waiter makes the next write, for itself and those queued behind it."""
    acked: bool = False
    leases: list[Lease] = field(default_factory=list)
    error: Exception | None = None


class FollowUp:
    """Where a consumer's workers acknowledge, and claim their next tasks as they do."""

    def __init__(
        self,
        storage: Storage,
        queues: Sequence[str],
        lease_s: float,
        consumer_id: str,
        wanted: Callable[[], int],
    ) -> None:
        """
        :param wanted: how many tasks a worker claims with its ack (0 while stopping).
        """
        self.storage = storage
        self.queues = queues
        self.lease_s = lease_s
        self.consumer_id = consumer_id
        self.wanted = wanted
        self._lock = threading.Lock()
        self._queued: list[_Waiter] = []
        self._writing = False

    def ack(self, ack: Ack, want: int) -> tuple[bool, list[Lease]]:
        """Acknowledge one attempt and claim up to `want` tasks: (acked, leases).

        Raises what the storage raised (the caller retries transient errors).
        """
        me = _Waiter(ack, want)
        with self._lock:
            self._queued.append(me)
            leads = me.leads = not self._writing
            self._writing = True
        if not leads:
            me.woken.acquire()
        if me.leads:
            self._write()
        if me.error is not None:
            raise me.error
        return me.acked, me.leases

    def _write(self) -> None:
        with self._lock:
            batch = self._queued[:MAX_BATCH]
            del self._queued[:MAX_BATCH]
        try:
            acked, leases = self.storage.ack_many_and_claim(
                [w.ack for w in batch], self.queues, sum(w.want for w in batch), self.lease_s,
                self.consumer_id,
            )  # fmt: skip
            _hand_out(batch, acked, leases)
        except Exception as exc:
            for waiter in batch:
                waiter.error = exc
        with self._lock:
            following = self._queued[0] if self._queued else None
            if following is None:
                self._writing = False
            else:
                following.leads = True
        for waiter in batch:  # the writer's own lock too: it is held and unused
            waiter.woken.release()
        if following is not None:
            following.woken.release()


def _hand_out(batch: list[_Waiter], acked: list[bool], leases: list[Lease]) -> None:
    """Each waiter's ack result, and up to the number of tasks it wanted, in queue order."""
    given = 0
    for waiter, landed in zip(batch, acked, strict=True):
        waiter.acked = landed
        waiter.leases = leases[given : given + waiter.want]
        given += len(waiter.leases)
