"""The settler: acknowledges finished attempts in groups on a thread of its own.

A worker thread that finished a task hands the ack to the settler and goes on with its next
task at once; it never waits for a write. The settler writes every ack that is waiting in one
storage call (`Storage.ack_many_and_claim`: one transaction on SQLite, one script call on
Redis, one statement on PostgreSQL), claiming the tasks that replace them in the same call. So
writes leave the workers' path, and the more tasks finish during one write, the more the next
write carries.

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
        self._thread = threading.Thread(target=self._loop, name="scoter-settler", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        with self._wake:
            self._stopped = True
            self._wake.notify()

    def put(self, ctx: TaskContext, ref: sig.TaskRef, result: bytes | None, ran_s: float) -> None:
        """Acknowledge this attempt soon; it stays in flight until the ack is written."""
        ack = Ack(ctx.token, result, self.runner.app.result_ttl)
        with self._wake:
            self._finished.append(_Finished(ctx, ref, ack, ran_s))
            self._wake.notify()

    # -- the settler thread ----------------------------------------------------------------

    def _loop(self) -> None:
        while True:
            with self._wake:
                while not self._finished and not self._stopped:
                    self._wake.wait()
                if not self._finished:
                    return
                batch = self._finished[:MAX_BATCH]
                del self._finished[:MAX_BATCH]
            try:
                self._settle(batch)
            except Exception as exc:  # given up at the exit, or a bug of ours
                log.error("could not acknowledge %d task(s) (%r); they run again when their "
                          "leases expire", len(batch), exc)  # fmt: skip
                for done in batch:
                    self.inflight.remove(done.ctx)

    def _settle(self, batch: list[_Finished]) -> None:
        acked, leases = self._write(batch)
        following = [self.runner.context(lease) for lease in leases]
        for ctx in following:  # in flight before their predecessors leave: no over-claiming
            self.inflight.add(ctx)
            self.deliver(ctx)
        for done, landed in zip(batch, acked, strict=True):
            done.ctx.settled = True
            try:
                self.runner.acked(done.ctx, done.ref, landed)
            except Exception:  # a receiver's or storage's failure: the ack itself landed
                log.exception("task %s: acknowledged, but reporting it failed", done.ctx.task_id)
            self.inflight.remove(done.ctx)

    def _wanted(self, batch: list[_Finished]) -> int:
        """How many tasks to claim with these acks: their successors, and while tasks are
        short, up to `prefetch` more waiting for a worker."""
        if not self.claiming():
            return 0
        capacity = self.workers
        if self.prefetch and all(done.ran_s < SHORT_TASK_S for done in batch):
            capacity += self.prefetch
        return max(0, capacity - (len(self.inflight) - len(batch)))

    def _write(self, batch: list[_Finished]) -> tuple[list[bool], list[Lease]]:
        """Write the acks through storage outages, with backoff. A retry claims nothing: the
        lost reply of a failed try may have claimed already."""
        acks = [done.ack for done in batch]
        want = self._wanted(batch)
        return through_outages(
            self.storage,
            lambda retry: self.storage.ack_many_and_claim(
                acks, self.queues, 0 if retry else want, self.lease_s, self.runner.consumer_id
            ),
            lambda: any(given_up(done.ctx) for done in batch),
            f"{len(batch)} ack(s)",
        )


def _unbound(ctx: TaskContext) -> None:
    raise RuntimeError("the settler has no executor to deliver tasks to")
