"""The settler: acknowledges finished attempts in groups on threads of its own.

A worker thread that finished a task hands the ack to the settler and goes on with its next
task at once; it never waits for a write. The settler writes every ack that is waiting in one
storage call (`Storage.ack_many_and_claim`: one transaction on SQLite, one script call on
Redis, one statement on PostgreSQL), claiming the tasks that replace them in the same call. So
writes leave the workers' path, and the more tasks finish during one write, the more the next
write carries. Where a write is mostly round trip (`Storage.settle_writers`: Redis), more than
one settler thread writes, each its own group.

While tasks are short it also claims up to `prefetch` tasks ahead, so that a worker finds its
next task waiting instead of waiting for a write. Long tasks get no prefetch: a task claimed
ahead would wait behind them while another consumer may be idle.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from scoter.consumer.inflight import InFlight
from scoter.consumer.runner import Runner, given_up, through_outages
from scoter.context import TaskContext
from scoter.storage.base import Ack, Lease

if TYPE_CHECKING:
    from scoter import signals as sig

log = logging.getLogger("scoter.consumer")

MAX_BATCH = 256
"""Most acks in one write."""
SHORT_TASK_S = 0.05
"""Tasks that ran shorter than this are short: claiming ahead for them pays."""


@dataclass(slots=True)
class _Finished:
    ctx: TaskContext
    ref: sig.TaskRef
    ack: Ack
    ran_s: float


class Settler:
    """Writes the acks of one consumer's finished attempts, and claims their successors."""

    def __init__(
        self,
        runner: Runner,
        inflight: InFlight,
        queues: Sequence[str],
        lease_s: float,
        workers: int,
        prefetch: int,
        claiming: Callable[[], bool],
    ) -> None:
        """
        :param claiming: False once the consumer stops: acks then claim nothing.
        """
        self.runner = runner
        self.storage = runner.storage
        self.inflight = inflight
        self.queues = queues
        self.lease_s = lease_s
        self.workers = workers
        self.prefetch = prefetch
        self.claiming = claiming
        self.deliver: Callable[[TaskContext], None] = _unbound
        """Hands a newly claimed attempt to the workers; set by the executor that owns this."""
        self._finished: list[_Finished] = []
        self._wake = threading.Condition()
        self._stopped = False
        self._writing = 0
        """Acks in the groups being written: still in flight, but their successors are claimed."""
        self._claiming = 0
        """Tasks the groups being written claim: not yet in flight."""
        self._threads = [
            threading.Thread(target=self._loop, name=f"scoter-settler-{i}", daemon=True)
            for i in range(max(1, self.storage.settle_writers))
        ]

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        with self._wake:
            self._stopped = True
            self._wake.notify_all()

    def put(self, ctx: TaskContext, ref: sig.TaskRef, result: bytes | None, ran_s: float) -> None:
        """Acknowledge this attempt soon; it stays in flight until the ack is written."""
        ack = Ack(ctx.token, result, self.runner.app.result_ttl)
        with self._wake:
            self._finished.append(_Finished(ctx, ref, ack, ran_s))
            self._wake.notify()

    # -- the settler threads ---------------------------------------------------------------

    def _loop(self) -> None:
        while True:
            with self._wake:
                while not self._finished and not self._stopped:
                    self._wake.wait()
                if not self._finished:
                    return
                batch = self._finished[:MAX_BATCH]
                del self._finished[:MAX_BATCH]
                group = _Group(batch, self._wanted(batch))
                self._writing += len(group.batch)
                self._claiming += group.want
            try:
                self._settle(group)
            except Exception as exc:  # given up at the exit, or a bug of ours
                log.error("could not acknowledge %d task(s) (%r); they run again when their "
                          "leases expire", len(group.batch), exc)  # fmt: skip
                for done in group.batch:
                    self.inflight.remove(done.ctx)
            finally:
                self._written(group)

    def _written(self, group: _Group) -> None:
        """The group's successors are in flight: stop counting it as being written (once)."""
        with self._wake:
            if group.counted:
                group.counted = False
                self._writing -= len(group.batch)
                self._claiming -= group.want

    def _settle(self, group: _Group) -> None:
        batch = group.batch
        acked, leases = self._write(batch, group.want)
        following = [self.runner.context(lease) for lease in leases]
        for ctx in following:  # in flight before their predecessors leave: no over-claiming
            self.inflight.add(ctx)
            self.deliver(ctx)
        self._written(group)
        for done, landed in zip(batch, acked, strict=True):
            done.ctx.settled = True
            try:
                self.runner.acked(done.ctx, done.ref, landed)
            except Exception:  # a receiver's or storage's failure: the ack itself landed
                log.exception("task %s: acknowledged, but reporting it failed", done.ctx.task_id)
            self.inflight.remove(done.ctx)

    def _wanted(self, batch: list[_Finished]) -> int:
        """How many tasks to claim with these acks: their successors, and while tasks are
        short, up to `prefetch` more waiting for a worker. Counts the other groups being
        written: their acks as gone, their claims as in flight."""
        if not self.claiming():
            return 0
        capacity = self.workers
        if self.prefetch and all(done.ran_s < SHORT_TASK_S for done in batch):
            capacity += self.prefetch
        staying = len(self.inflight) - self._writing - len(batch) + self._claiming
        return max(0, capacity - staying)

    def _write(self, batch: list[_Finished], want: int) -> tuple[list[bool], list[Lease]]:
        """Write the acks through storage outages, with backoff. A retry claims nothing: the
        lost reply of a failed try may have claimed already."""
        acks = [done.ack for done in batch]
        return through_outages(
            self.storage,
            lambda retry: self.storage.ack_many_and_claim(
                acks, self.queues, 0 if retry else want, self.lease_s, self.runner.consumer_id
            ),
            lambda: any(given_up(done.ctx) for done in batch),
            f"{len(batch)} ack(s)",
        )


@dataclass(slots=True)
class _Group:
    """Acks written in one call, and how many tasks that call claims."""

    batch: list[_Finished]
    want: int
    counted: bool = True
    """Still counted in the settler's `_writing` and `_claiming`."""


def _unbound(ctx: TaskContext) -> None:
    raise RuntimeError("the settler has no executor to deliver tasks to")
