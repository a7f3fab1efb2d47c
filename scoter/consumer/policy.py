"""The policy: what an attempt's outcome means for its task, written fenced by its lease.

succeeded → ack (done) · error → retry after a backoff, or dead once `retries` are spent ·
interrupted → release (queued again), or dead once `max_interruptions` are spent ·
undeliverable → dead with its reason · crashed → requeued counting a crash (dead at
`max_crashes`). Each write names the attempt's lease token; a refused one means the lease was
lost (DESIGN G3) and is counted and signalled. Writes ride out storage outages.

This is the one place where retry maths, the three budgets and signals meet the storage
contract, so every backend and every executor behaves the same. Only the settler calls it
(and immediate mode, in the caller's thread).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from scoter import flows
from scoter import signals as sig
from scoter.consumer import events as ev
from scoter.consumer.attempt import (
    CRASHED,
    FAILED,
    INTERRUPTED,
    SUCCEEDED,
    UNDELIVERABLE,
    Outcome,
    expired_detail,
)
from scoter.context import TaskContext
from scoter.display import printable
from scoter.retry import RetryPolicy
from scoter.states import EXPIRED, REVOKED, State
from scoter.storage.base import Ack, Lease, NewTask
from scoter.storage.outages import through_outages

if TYPE_CHECKING:
    from scoter.app import Scoter

log = logging.getLogger("scoter.consumer")

DEFAULT_RETRY = RetryPolicy()
ENDED = {EXPIRED: sig.SIGNAL_EXPIRED, REVOKED: sig.SIGNAL_REVOKED}
"""Dead reasons that are outcomes the user asked for, not failures, and their signals."""
T = TypeVar("T")


class Policy:
    """Settles the attempts of one consumer (or of immediate mode)."""

    def __init__(
        self,
        app: Scoter,
        consumer_id: str,
        events: ev.Events | None = None,
        *,
        retry_at_once: bool = False,
    ) -> None:
        """
        :param events: where outcomes are reported; default: the log alone.
        :param retry_at_once: retry a failed task without its delay (immediate mode).
        """
        self.app = app
        self.storage = app.storage
        self.consumer_id = consumer_id
        self.events = ev.Events([ev.LogObserver()]) if events is None else events
        self.retry_at_once = retry_at_once
        self.stale_writes = 0
        """Writes refused because the attempt had lost its lease (DESIGN G3)."""
        self.on_scheduled: Callable[[float], None] | None = None
        """Told the eta of each task this policy scheduled (a retry, a held-off release): the
        consumer's scheduler wakes for it."""
        self.claims_in_doubt = threading.Event()
        """Set when a call that claims failed: its reply was lost, and the claim may have
        landed, leasing tasks to this consumer that it does not know (`Storage.hand_back`)."""
        self._lock = threading.Lock()

    def apply(self, ctx: TaskContext, outcome: Outcome) -> None:
        """Write what `outcome` means for the task, one attempt alone."""
        if outcome.kind == SUCCEEDED:
            self.ack([(ctx, outcome)], [], 0, 0.0)
        elif outcome.kind == FAILED:
            self._failed(ctx, outcome)
        elif outcome.kind == INTERRUPTED:
            self.release(ctx, outcome.error or "interrupted", outcome.delay)
        elif outcome.kind == UNDELIVERABLE and outcome.reason in ENDED:
            self.end(ctx, outcome.reason, outcome.error or outcome.reason)
        elif outcome.kind == UNDELIVERABLE:
            self.to_dead(ctx, outcome.reason, outcome.error or outcome.reason)
        elif outcome.kind == CRASHED:
            self._crashed(ctx, outcome.error or "crashed")
        else:
            raise ValueError(f"unknown outcome {outcome.kind!r}")

    # -- succeeded ---------------------------------------------------------------------------

    def ack(
        self,
        done: Sequence[tuple[TaskContext, Outcome]],
        queues: Sequence[str],
        want: int,
        lease_s: float,
    ) -> list[Lease]:
        """Acknowledge these successes in one write that also claims up to `want` tasks
        (`Storage.ack_many_and_claim`); then signal each. Returns the new leases."""
        ttl = self.app.result_ttl
        acks = [Ack(ctx.token, outcome.result, ttl, outcome.flow) for ctx, outcome in done]
        acked, leases = through_outages(
            self.storage,
            lambda retry: self._ack_many_and_claim(acks, queues, want, lease_s, retry),
            lambda: any(ctx.given_up() for ctx, _ in done),
            f"{len(acks)} ack(s)",
        )
        for (ctx, outcome), landed in zip(done, acked, strict=True):
            ctx.settled = True  # the heartbeat stops renewing this token
            try:
                self._acked(ctx, outcome, landed)
            except Exception:  # a receiver's or storage's failure: the ack itself landed
                log.exception("task %s: acknowledged, but reporting it failed",
                              printable(ctx.task_id))  # fmt: skip
        return leases

    def _ack_many_and_claim(
        self, acks: list[Ack], queues: Sequence[str], want: int, lease_s: float, retry: int
    ) -> tuple[list[bool], list[Lease]]:
        if retry and want:  # the failed try may have claimed: a retry claims nothing
            self.claims_in_doubt.set()
            want = 0
        return self.storage.ack_many_and_claim(acks, queues, want, lease_s, self.consumer_id)

    def _acked(self, ctx: TaskContext, outcome: Outcome, landed: bool) -> None:
        if landed or self._completed_by(ctx):
            self.events.emit(ev.SUCCEEDED, ctx, duration=outcome.ran_s)
            self._send(sig.SIGNAL_COMPLETE, ctx)
        else:
            self._refused(ctx, "ack")

    def _completed_by(self, ctx: TaskContext) -> bool:
        """Whether this very attempt made the task done, so that a refused ack is no lease
        loss: the task called `ctx.complete_in`, or an earlier try of the ack landed but its
        reply was lost with the connection."""
        info = self._write(ctx, lambda: self.storage.get(ctx.task_id))
        if info is None or info.state is not State.DONE or not info.history:
            return False
        last = info.history[-1]
        return last.get("attempt") == ctx.attempt and last.get("outcome") == SUCCEEDED

    # -- the other outcomes ------------------------------------------------------------------

    def _failed(self, ctx: TaskContext, outcome: Outcome) -> None:
        error = outcome.error or outcome.summary
        self.events.emit(ev.ERROR, ctx, duration=outcome.ran_s or None, detail=outcome.summary)
        self._send(sig.SIGNAL_ERROR, ctx, outcome.exception())
        retry = self.retry_policy(ctx)
        budget = outcome.budget or ctx.budget
        if budget:
            retry = budget.over(retry)
        errors_before = ctx.lease.errors
        if not retry.should_retry(errors_before):
            summary = f"failed for good after {errors_before + 1} error(s): {outcome.summary}"
            self.to_dead(ctx, "error", error, summary, outcome.exc)
            return
        delay = 0.0 if self.retry_at_once else retry.delay(errors_before)
        eta = time.time() + delay
        if outcome.expires is not None and eta > outcome.expires:
            detail = expired_detail(outcome.expires, eta, "its retry due")
            self.end(ctx, EXPIRED, f"{detail}; the last error:\n{error}")
            return
        if self._write(ctx, lambda: self.storage.retry(ctx.token, eta, error)):
            self.events.emit(ev.RETRIED, ctx, delay=delay, detail=outcome.summary)
            self._scheduled(eta)
            self._send(sig.SIGNAL_RETRYING, ctx, outcome.exception(), delay)
        else:
            self._refused(ctx, "retry")

    def retry_policy(self, ctx: TaskContext) -> RetryPolicy:
        task = self.app.tasks.get(ctx.task_name)
        return task.policy if task else DEFAULT_RETRY

    def release(self, ctx: TaskContext, reason: str, delay: float = 0.0) -> bool:
        """Hand the task back unfinished, claimable after `delay` s (or to dead once
        `max_interruptions` is spent); False when refused."""
        if not self.retry_policy(ctx).may_release(ctx.lease.interruptions):
            detail = f"interrupted {ctx.lease.interruptions + 1} times (max_interruptions)"
            return self.to_dead(ctx, "interrupted", detail)
        if self._write(ctx, lambda: self.storage.release(ctx.token, reason, delay)):
            self.events.emit(ev.INTERRUPTED, ctx, detail=reason)
            self._send(sig.SIGNAL_INTERRUPTED, ctx)
            if delay > 0:
                self._scheduled(time.time() + delay)
            return True
        self._refused(ctx, "release")
        return False

    def _crashed(self, ctx: TaskContext, detail: str) -> None:
        """The attempt died with its process: requeue now, counting a crash (G4)."""
        try:
            rescued = self._write(ctx, lambda: self.storage.crash(ctx.token, detail))
        except NotImplementedError:
            log.warning("task %s (%s): %s; it runs again when its lease expires",
                        printable(ctx.task_id), printable(ctx.task_name),
                        printable(detail))  # fmt: skip
            return
        if rescued is None:
            self._refused(ctx, "crash")
            return
        dead = rescued.state is State.DEAD
        what = "dead: max_crashes reached" if dead else "queued again"
        summary = f"{detail} (crash {rescued.crashes}), {what}"
        self.events.emit(ev.CRASHED, ctx, detail=summary)
        self._send(sig.SIGNAL_RESCUED, ctx, rescued.state.value)
        if dead:
            self.events.emit(ev.DEAD, ctx, reason="crashed", detail=summary)
            self._send(sig.SIGNAL_DEAD, ctx, "crashed")

    def end(self, ctx: TaskContext, reason: str, detail: str) -> bool:
        """End the task dead `expired` or `revoked` (an outcome, not a failure): fenced, with
        SIGNAL_EXPIRED or SIGNAL_REVOKED after SIGNAL_DEAD; False when refused."""
        if not self.to_dead(ctx, reason, detail, summary=detail.splitlines()[0]):
            return False
        self._send(ENDED[reason], ctx)
        if reason == REVOKED:
            try:  # an operator's `dead retry` of it then runs it
                self.storage.forget_revocation(ctx.task_id)
            except Exception as exc:
                log.warning("task %s: could not drop its revocation: %r",
                            printable(ctx.task_id), exc)  # fmt: skip
        return True

    def to_dead(
        self,
        ctx: TaskContext,
        reason: str,
        error: str,
        summary: str = "",
        exc: BaseException | None = None,
    ) -> bool:
        """Move the task to dead with `reason`, fenced; False when refused. What a flow step
        hands on at its death (its error handler, a chord's stand-in) is stored with it
        (`Storage.dead_and_enqueue`).

        :param summary: one line for the log, when `error` is a traceback.
        :param exc: the exception the task raised, when it ran in this process.
        """
        handlers = self._error_handlers(ctx, reason, error, exc)

        def dead() -> bool:
            if handlers:
                return self.storage.dead_and_enqueue(ctx.token, reason, error, handlers)
            return self.storage.dead(ctx.token, reason, error)

        if self._write(ctx, dead):
            kind = reason if reason in (ev.EXPIRED, ev.REVOKED) else ev.DEAD
            self.events.emit(kind, ctx, reason=reason, detail=summary or error)
            self._send(sig.SIGNAL_DEAD, ctx, reason)
            return True
        self._refused(ctx, "dead")
        return False

    def _error_handlers(
        self, ctx: TaskContext, reason: str, error: str, exc: BaseException | None
    ) -> list[NewTask]:
        """What the flow the task is a step of stores at its death (`flows.on_dead`); its flow
        is read from the payload when another process decoded it (the process executor's
        child)."""
        flow = ctx.flow if ctx.flow is not None else flows.read(self.app, ctx.lease)
        try:
            return flows.on_dead(self.app, ctx.lease, flow, reason, error, exc)
        except Exception:  # e.g. its arguments cannot be encoded: the death itself must land
            log.exception("task %s: its flow's error handler cannot be stored; it goes dead "
                          "without it", printable(ctx.task_id))  # fmt: skip
            return []

    def _scheduled(self, eta: float) -> None:
        if self.on_scheduled is not None:
            self.on_scheduled(eta)

    # -- writing -----------------------------------------------------------------------------

    def _write(self, ctx: TaskContext, write: Callable[[], T]) -> T:
        """Make a settling write land: retry it through storage outages, with backoff.

        It ends when the write lands or is refused (the lease is gone), never by dropping the
        outcome: an attempt whose write could not be delivered would otherwise run again —
        unless `ctx.give_up_at` passes (a consumer that must exit), when the error is raised.
        """
        landed = through_outages(
            self.storage, lambda _retry: write(), ctx.given_up, f"task {ctx.task_id}"
        )
        ctx.settled = True  # the heartbeat stops renewing this token
        return landed

    def _refused(self, ctx: TaskContext, write: str) -> None:
        with self._lock:
            self.stale_writes += 1
        if ctx.lease_lost:  # reported when it was found
            log.info("task %s (%s): %s refused, as its lost lease means",
                     printable(ctx.task_id), printable(ctx.task_name), write)  # fmt: skip
        else:
            ctx.lease_lost = True
            self.events.emit(ev.LEASE_LOST, ctx, reason=write, detail=f"its {write} was refused")
        self._send(sig.SIGNAL_LEASE_LOST, ctx, write)

    def _send(self, name: str, ctx: TaskContext, *extra: Any) -> None:
        if self.app.signals:
            self.app.signals.send(name, ref_of(ctx), *extra)


def ref_of(ctx: TaskContext) -> sig.TaskRef:
    """The task as signal receivers see it: with its arguments when this process decoded them."""
    lease = ctx.lease
    return ctx.ref or sig.TaskRef(lease.id, lease.name, lease.queue, attempt=lease.attempt)
