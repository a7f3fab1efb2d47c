"""The settler: the one writer of attempts' outcomes, whatever executor ran them.

An executor that finished an attempt hands its outcome to `put` and goes on at once; it never
waits for a write. The settler's threads take every outcome waiting, apply the policy to each
(`scoter.consumer.policy`) and write all the acknowledgements of the group in one storage call
(`Storage.ack_many_and_claim`: one transaction on SQLite, one script call on Redis, one
statement on PostgreSQL) that also claims the tasks replacing them, which it hands to the
executor. So writes leave the workers' path, and the more attempts finish during one write,
the more the next write carries. Where a write is mostly round trip
(`Storage.settle_writers`: Redis), more than one settler thread writes, each its own group.

While tasks are short it also claims up to `prefetch` tasks ahead, so that a worker finds its
next task waiting instead of waiting for a write. Long tasks get no prefetch: a task claimed
ahead would wait behind them while another consumer may be idle. Nor do tasks of limited names
(`@app.task(concurrency=..., rate_limit=...)`): claimed ahead, one would hold a slot of its
limit, or count as started, while it waits for a worker (`Storage.claim_ahead`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

from scoter.consumer.attempt import SUCCEEDED, UNDELIVERABLE, Outcome
from scoter.consumer.inflight import InFlight
from scoter.consumer.policy import Policy
from scoter.context import TaskContext
from scoter.display import one_line, printable
from scoter.states import REVOKED
from scoter.storage._limits import limited
from scoter.storage.base import Lease

log = logging.getLogger("scoter.consumer")

MAX_BATCH = 256
"""Most outcomes in one group."""
PAUSE_STEP_S = 0.005
"""How often `claims_paused` looks whether the claims being written have landed."""
SHORT_TASK_S = 0.05
"""Tasks that ran shorter than this are short: claiming ahead for them pays."""


@dataclass(slots=True)
class _Group:
    """Outcomes settled together, and how many tasks their write claims."""

    batch: list[tuple[TaskContext, Outcome]]
    want: int
    ahead: int = 0
    """Of `want`, how many are claimed ahead of a free worker."""
    counted: bool = True
    """Still counted in the settler's `_writing` and `_claiming`."""


class Settler:
    """Writes the outcomes of one consumer's attempts, and claims their successors."""

    def __init__(
        self,
        policy: Policy,
        inflight: InFlight,
        queues: Sequence[str],
        lease_s: float,
        capacity: int,
        prefetch: int,
        claiming: Callable[[], bool],
        new_context: Callable[[Lease, float], TaskContext],
    ) -> None:
        """
        :param capacity: attempts the executor runs at once.
        :param claiming: False once the consumer stops: settling then claims nothing.
        :param new_context: the context of a newly claimed attempt, given when its claim
            was sent (time.monotonic()).
        """
        self.policy = policy
        self.storage = policy.storage
        self.inflight = inflight
        self.queues = queues
        self.lease_s = lease_s
        self.capacity = capacity
        self.prefetch = prefetch
        self.claiming = claiming
        self.new_context = new_context
        self.limited = any(limited(task.limit) for task in policy.app.tasks.values())
        """Whether the app has limited tasks: then the tasks claimed ahead are claimed apart."""
        self.deliver: Callable[[TaskContext], None] = _unbound
        """Hands a newly claimed attempt to the executor; set by the consumer."""
        self._waiting: list[tuple[TaskContext, Outcome]] = []
        self._wake = threading.Condition()
        self._stopped = False
        self._writing = 0
        """Attempts in the groups being written: still in flight, their successors claimed."""
        self._claiming = 0
        """Tasks the groups being written claim: not yet in flight."""
        self._paused = False
        """Set while the consumer hands back leases it does not know: claim nothing."""
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

    def put(self, ctx: TaskContext, outcome: Outcome) -> None:
        """Settle this attempt soon; it stays in flight until its outcome is written.

        Dropped when the consumer already handed the task back at its drain deadline: that
        release stands, and the task runs again. An attempt whose task was revoked while it
        ran ends revoked, however it ended.
        """
        if ctx.revoked is not None and outcome.kind != UNDELIVERABLE:
            detail = f"{ctx.revoked}; the attempt ended: {outcome.kind}"
            outcome = Outcome.undeliverable(REVOKED, detail)
        if not ctx.begin_settling():
            log.warning("task %s (%s) ended (%s) after it was handed back at the drain "
                        "deadline", printable(ctx.task_id), printable(ctx.task_name),
                        outcome.kind)  # fmt: skip
            return
        self._enqueue(ctx, outcome)

    def hand_back(self, ctx: TaskContext, reason: str, delay: float) -> None:
        """Release an attempt the consumer took back from its executor (`ctx.take_back`)."""
        self._enqueue(ctx, Outcome.interrupted(reason, delay))

    def _enqueue(self, ctx: TaskContext, outcome: Outcome) -> None:
        with self._wake:
            self._waiting.append((ctx, outcome))
            self._wake.notify()

    # -- the settler threads ---------------------------------------------------------------

    def _loop(self) -> None:
        while (group := self._next_group()) is not None:
            try:
                self._settle(group)
            except Exception as exc:  # given up at the exit, or a bug of ours
                log.error("could not settle %d task(s) (%s); they run again when their "
                          "leases expire", len(group.batch), one_line(exc))  # fmt: skip
                for ctx, _ in group.batch:
                    self.inflight.remove(ctx)
            finally:
                self._written(group)

    @contextmanager
    def claims_paused(self, timeout: float) -> Iterator[bool]:
        """Claim nothing while the block runs; yields whether every claim of this settler
        landed in flight (none still being written) within `timeout` seconds."""
        with self._wake:
            self._paused = True
        try:
            give_up_at = time.monotonic() + timeout
            while self._claiming and time.monotonic() < give_up_at:
                time.sleep(PAUSE_STEP_S)
            with self._wake:
                quiet = not self._claiming
            yield quiet
        finally:
            with self._wake:
                self._paused = False

    def _next_group(self) -> _Group | None:
        with self._wake:
            while not self._waiting and not self._stopped:
                self._wake.wait()
            if not self._waiting:
                return None
            batch = self._waiting[:MAX_BATCH]
            del self._waiting[:MAX_BATCH]
            group = _Group(batch, *self._wanted(batch))
            self._writing += len(batch)
            self._claiming += group.want
            return group

    def _written(self, group: _Group) -> None:
        """The group's successors are in flight: stop counting it as being written (once)."""
        with self._wake:
            if group.counted:
                group.counted = False
                self._writing -= len(group.batch)
                self._claiming -= group.want

    def _settle(self, group: _Group) -> None:
        succeeded = [item for item in group.batch if item[1].kind == SUCCEEDED]
        for ctx, outcome in group.batch:
            if outcome.kind != SUCCEEDED:
                self._apply(ctx, outcome)
        asked = time.monotonic()
        ahead = group.ahead if self.limited else 0
        leases = self._ack_and_claim(succeeded, group.want - ahead)
        if ahead:
            leases += self._claim_ahead(ahead)
        following = [self.new_context(lease, asked) for lease in leases]
        for ctx in following:  # in flight before their predecessors leave: no over-claiming
            self.inflight.add(ctx)
            self.deliver(ctx)
        self._written(group)
        for ctx, _ in group.batch:
            self.inflight.remove(ctx)

    def _apply(self, ctx: TaskContext, outcome: Outcome) -> None:
        try:
            self.policy.apply(ctx, outcome)
        except Exception as exc:  # given up at the exit, or a bug of ours
            log.error("could not settle task %s (%s); it runs again when its lease expires",
                      printable(ctx.task_id), one_line(exc))  # fmt: skip

    def _ack_and_claim(
        self, succeeded: list[tuple[TaskContext, Outcome]], want: int
    ) -> list[Lease]:
        if succeeded:
            return self.policy.ack(succeeded, self.queues, want, self.lease_s)
        if not want:
            return []
        try:
            return self.storage.claim(self.queues, want, self.lease_s, self.policy.consumer_id)
        except self.storage.transient_errors:
            self.policy.claims_in_doubt.set()
            return []  # the consumer's fetch loop claims once the storage is back

    def _claim_ahead(self, n: int) -> list[Lease]:
        try:
            return self.storage.claim_ahead(self.queues, n, self.lease_s, self.policy.consumer_id)
        except self.storage.transient_errors:
            self.policy.claims_in_doubt.set()
            return []  # the next group claims again

    def _wanted(self, batch: list[tuple[TaskContext, Outcome]]) -> tuple[int, int]:
        """How many tasks to claim with these outcomes: their successors, and while tasks are
        short, up to `prefetch` more waiting for a worker (the second number: how many of the
        first those are). Counts the other groups being written: their attempts as gone,
        their claims as in flight."""
        if self._paused or not self.claiming():
            return 0, 0
        capacity = self.capacity
        if self.prefetch and all(outcome.ran_s < SHORT_TASK_S for _, outcome in batch):
            capacity += self.prefetch
        staying = len(self.inflight) - self._writing - len(batch) + self._claiming
        want = max(0, capacity - staying)
        return want, want - min(want, max(0, self.capacity - staying))


def _unbound(ctx: TaskContext) -> None:
    raise RuntimeError("the settler has no executor to deliver tasks to")
