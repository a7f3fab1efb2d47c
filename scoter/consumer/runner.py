"""The execute path of one attempt — decode, run, settle — and the policy that settles it.

This is the one place where retry maths, the three budgets and signals meet the storage
contract, so every backend and every executor behaves the same.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from scoter import signals as sig
from scoter.context import TaskContext, deactivate
from scoter.exceptions import Interrupt, RemoteError, TimedOut
from scoter.retry import RetryPolicy
from scoter.states import State
from scoter.storage.base import Ack, Lease, Storage

if TYPE_CHECKING:
    from scoter.app import Scoter
    from scoter.consumer.followup import FollowUp
    from scoter.task import Task

log = logging.getLogger("scoter.runner")

DEFAULT_POLICY = RetryPolicy()
WRITE_RETRY_MAX_S = 2.0
T = TypeVar("T")


SUCCEEDED = "succeeded"
FAILED = "error"
INTERRUPTED = "interrupted"


@dataclass(frozen=True, slots=True)
class Outcome:
    """How an attempt ended, in a form that crosses process boundaries (no live objects
    but `exc`, which stays in the process that ran the task)."""

    kind: str
    """SUCCEEDED, FAILED or INTERRUPTED."""
    result: bytes | None = None
    error: str | None = None
    """The traceback (FAILED) or the reason (INTERRUPTED)."""
    summary: str = ""
    """One line for logs: `ValueError('x')`."""
    exc: BaseException | None = field(default=None, compare=False)

    @classmethod
    def succeeded(cls, result: bytes | None) -> Outcome:
        return cls(SUCCEEDED, result=result)

    @classmethod
    def failed(cls, exc: BaseException) -> Outcome:
        return cls(FAILED, error=_format_error(exc), summary=repr(exc), exc=exc)

    def exception(self) -> BaseException:
        """The exception for signal receivers; a stand-in when it ran in another process."""
        return self.exc or RemoteError(self.summary)


class Undeliverable(Exception):
    """The message can never run here; it goes to dead with `reason`."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


class Runner:
    """Runs leased tasks of one app and settles each attempt, fenced by its lease token."""

    def __init__(self, app: Scoter, consumer_id: str) -> None:
        self.app = app
        self.storage = app.storage
        self.consumer_id = consumer_id
        self.stale_writes = 0
        """Writes refused because the attempt had lost its lease (DESIGN G3)."""
        self._lock = threading.Lock()

    def context(self, lease: Lease) -> TaskContext:
        task = self.app.tasks.get(lease.name)
        timeout = task.timeout if task else None
        ctx = TaskContext(lease, self.storage, self.app.serializer, timeout)
        ctx.result_ttl = self.app.result_ttl
        return ctx

    def execute(self, lease: Lease, ctx: TaskContext | None = None) -> None:
        """Decode, run and settle one attempt. Never raises for anything the task does."""
        ctx = ctx or self.context(lease)
        ran = self.attempt(ctx)
        if ran is not None:
            self.settle(ctx, *ran)

    def attempt(self, ctx: TaskContext) -> tuple[Outcome, sig.TaskRef] | None:
        """Decode and run; None when the message cannot run here (it went to dead)."""
        lease = ctx.lease
        try:
            task, args, kwargs = self.decode(lease)
        except Undeliverable as bad:
            self.undeliverable(ctx, bad)
            return None
        ref = sig.TaskRef(lease.id, lease.name, lease.queue, args, kwargs, lease.attempt)
        self._send(sig.SIGNAL_EXECUTING, ref)
        return self.run(task, args, kwargs, ctx), ref

    def decode(self, lease: Lease) -> tuple[Task[Any, Any], tuple[Any, ...], dict[str, Any]]:
        task = self.app.tasks.get(lease.name)
        if task is None:
            known = ", ".join(sorted(self.app.tasks)) or "none"
            raise Undeliverable(
                "unknown task",
                f"no task named {lease.name!r} is registered in app {self.app.name!r} "
                f"(known: {known}); deploy the code that defines it, then `scoter dead retry`",
            )
        try:
            args, kwargs = self.app.decode_message(lease.payload)
        except Exception as exc:  # DecodeError, or a serializer's own failure
            raise Undeliverable("undecodable", f"payload of {lease.name!r}: {exc}") from exc
        return task, args, kwargs

    def undeliverable(self, ctx: TaskContext, bad: Undeliverable) -> None:
        log.error("task %s (%s) cannot run: %s", ctx.task_id, ctx.task_name, bad)
        if self.may_settle(ctx, bad.reason):
            self.kill(ctx, bad.reason, str(bad))

    def run(
        self, task: Task[Any, Any], args: tuple[Any, ...], kwargs: dict[str, Any], ctx: TaskContext
    ) -> Outcome:
        """Call the task's function; what happened, with the result encoded."""
        token = ctx.activate()
        try:
            value = task.fn(*args, **{**kwargs, "ctx": ctx} if task.context else kwargs)
            outcome = Outcome.succeeded(self.encode_result(value))
        except Interrupt:
            outcome = Outcome(INTERRUPTED, error="the task raised Interrupt")
        except Exception as exc:
            outcome = Outcome.failed(exc)
        finally:
            deactivate(token)
        if ctx.timed_out and outcome.kind != INTERRUPTED:
            return Outcome.failed(TimedOut(f"the task ran past its {task.timeout} s time limit"))
        return outcome

    def encode_result(self, value: Any) -> bytes | None:
        if value is None or self.app.result_ttl == 0:
            return None
        try:
            return self.app.encode_result(value)
        except TypeError as exc:
            raise TypeError(f"the task's return value cannot be stored: {exc}") from exc

    # -- settling --------------------------------------------------------------------------

    def settle(
        self,
        ctx: TaskContext,
        outcome: Outcome,
        ref: sig.TaskRef | None = None,
        follow_up: FollowUp | None = None,
    ) -> list[Lease]:
        """Apply the policy to an attempt's outcome: ack, retry, release or dead, fenced."""
        ref = ref or _ref(ctx.lease)
        if not self.may_settle(ctx, outcome.kind):
            return []
        if outcome.kind == SUCCEEDED:
            return self._succeeded(ctx, ref, outcome.result, follow_up)
        if outcome.kind == INTERRUPTED:
            self.interrupt(ctx, outcome.error or "interrupted", ref)
        else:
            self._failed(ctx, ref, outcome)
        return []

    def _succeeded(
        self,
        ctx: TaskContext,
        ref: sig.TaskRef,
        data: bytes | None,
        follow_up: FollowUp | None,
    ) -> list[Lease]:
        ttl = self.app.result_ttl
        if follow_up:
            ack, wanted = Ack(ctx.token, data, ttl), follow_up.wanted()
            acked, leases = self._write(ctx, lambda: follow_up.ack(ack, wanted))
        else:
            acked, leases = self._write(ctx, lambda: self.storage.ack(ctx.token, data, ttl)), []
        self.acked(ctx, ref, acked)
        return leases

    def acked(self, ctx: TaskContext, ref: sig.TaskRef, landed: bool) -> None:
        """After an ack was written: signal completion, or the lease loss that refused it."""
        if landed or self._completed_by(ctx):
            self._send(sig.SIGNAL_COMPLETE, ref)
        else:
            self._refused(ctx, ref, "ack")

    def _completed_by(self, ctx: TaskContext) -> bool:
        """Whether this very attempt made the task done, so that a refused ack is no lease
        loss: the task called `ctx.complete_in`, or an earlier try of the ack landed but its
        reply was lost with the connection."""
        info = self._write(ctx, lambda: self.storage.get(ctx.task_id))
        if info is None or info.state is not State.DONE or not info.history:
            return False
        last = info.history[-1]
        return last.get("attempt") == ctx.attempt and last.get("outcome") == SUCCEEDED

    def _failed(self, ctx: TaskContext, ref: sig.TaskRef, outcome: Outcome) -> None:
        error = outcome.error or outcome.summary
        self._send(sig.SIGNAL_ERROR, ref, outcome.exception())
        policy = self.policy(ctx)
        errors_before = ctx.lease.errors
        if policy.should_retry(errors_before):
            delay = policy.delay(errors_before)
            eta = time.time() + delay
            if self._write(ctx, lambda: self.storage.retry(ctx.token, eta, error)):
                log.info("task %s (%s) failed, retry in %.1fs: %s", ref.id, ref.name, delay,
                         outcome.summary)  # fmt: skip
                self._send(sig.SIGNAL_RETRYING, ref, outcome.exception(), delay)
            else:
                self._refused(ctx, ref, "retry")
            return
        log.error("task %s (%s) failed for good after %d error(s): %s",
                  ref.id, ref.name, errors_before + 1, outcome.summary)  # fmt: skip
        self.kill(ctx, "error", error, ref)

    def policy(self, ctx: TaskContext) -> RetryPolicy:
        task = self.app.tasks.get(ctx.lease.name)
        return task.policy if task else DEFAULT_POLICY

    def interrupt(
        self, ctx: TaskContext, reason: str, ref: sig.TaskRef | None = None, delay: float = 0.0
    ) -> bool:
        """Hand the task back unfinished, claimable after `delay` s (or to dead once
        `max_interruptions` is spent)."""
        ref = ref or _ref(ctx.lease)
        if not self.policy(ctx).may_release(ctx.lease.interruptions):
            detail = f"interrupted {ctx.lease.interruptions + 1} times (max_interruptions)"
            return self.kill(ctx, "interrupted", detail, ref)
        if self._write(ctx, lambda: self.storage.release(ctx.token, reason, delay)):
            self._send(sig.SIGNAL_INTERRUPTED, ref)
            return True
        self._refused(ctx, ref, "release")
        return False

    def crashed(self, ctx: TaskContext, detail: str) -> None:
        """The attempt died with its process: requeue now, counting a crash (G4)."""
        if not self.may_settle(ctx, "crashed"):
            return
        ref = _ref(ctx.lease)
        try:
            rescued = self._write(ctx, lambda: self.storage.crash(ctx.token, detail))
        except NotImplementedError:
            log.warning("task %s (%s): %s; it runs again when its lease expires",
                        ctx.task_id, ctx.task_name, detail)  # fmt: skip
            return
        if rescued is None:
            self._refused(ctx, ref, "crash")
            return
        dead = rescued.state is State.DEAD
        what = "dead: max_crashes reached" if dead else "queued again"
        log.warning("task %s (%s): %s (crash %d), %s",
                    ctx.task_id, ctx.task_name, detail, rescued.crashes, what)  # fmt: skip
        self._send(sig.SIGNAL_RESCUED, ref, rescued.state.value)
        if dead:
            self._send(sig.SIGNAL_DEAD, ref, "crashed")

    def kill(
        self, ctx: TaskContext, reason: str, error: str, ref: sig.TaskRef | None = None
    ) -> bool:
        """Move the task to dead with `reason`, fenced."""
        ref = ref or _ref(ctx.lease)
        if self._write(ctx, lambda: self.storage.dead(ctx.token, reason, error)):
            self._send(sig.SIGNAL_DEAD, ref, reason)
            return True
        self._refused(ctx, ref, "dead")
        return False

    @staticmethod
    def may_settle(ctx: TaskContext, outcome: str) -> bool:
        """Whether this outcome may settle the attempt: not when the consumer already handed
        the task back at its drain deadline (that release stands; the task runs again)."""
        if ctx.begin_settling():
            return True
        log.warning("task %s (%s) ended (%s) after it was handed back at the drain deadline",
                    ctx.task_id, ctx.task_name, outcome)  # fmt: skip
        return False

    def _write(self, ctx: TaskContext, write: Callable[[], T]) -> T:
        """Make a settling write land: retry it through storage outages, with backoff.

        It ends when the write lands or is refused (the lease is gone), never by dropping the
        outcome: an attempt whose write could not be delivered would otherwise run again —
        unless `ctx.give_up_at` passes (a consumer that must exit), when the error is raised.
        """
        landed = through_outages(
            self.storage, lambda _retry: write(), lambda: given_up(ctx), f"task {ctx.task_id}"
        )
        ctx.settled = True  # the heartbeat stops renewing this token
        return landed

    def _refused(self, ctx: TaskContext, ref: sig.TaskRef, write: str) -> None:
        with self._lock:
            self.stale_writes += 1
        ctx.lease_lost = True
        log.warning(
            "task %s (%s): %s refused, this attempt lost its lease", ref.id, ref.name, write
        )
        self._send(sig.SIGNAL_LEASE_LOST, ref, write)

    def _send(self, name: str, ref: sig.TaskRef, *extra: Any) -> None:
        if self.app.signals:
            self.app.signals.send(name, ref, *extra)


def through_outages(
    storage: Storage, write: Callable[[int], T], give_up: Callable[[], bool], what: str
) -> T:
    """Run a settling write until it lands, retrying storage outages with backoff; raise the
    outage once `give_up()` (a consumer that must exit). `write` gets the retry number."""
    pause = 0.05
    for retry in itertools.count():
        try:
            return write(retry)
        except storage.transient_errors as exc:
            if give_up():
                raise
            if retry == 0:
                log.warning("%s: storage unavailable, retrying: %r", what, exc)
        time.sleep(pause)
        pause = min(pause * 2, WRITE_RETRY_MAX_S)
    raise AssertionError("unreachable")


def given_up(ctx: TaskContext) -> bool:
    """Whether a consumer that must exit has stopped retrying this attempt's writes."""
    return ctx.give_up_at is not None and time.monotonic() >= ctx.give_up_at


def _ref(lease: Lease) -> sig.TaskRef:
    return sig.TaskRef(lease.id, lease.name, lease.queue, attempt=lease.attempt)


def _format_error(exc: BaseException) -> str:
    """The traceback from the task's own frames on (the runner's frame left out)."""
    tb = exc.__traceback__
    return "".join(traceback.format_exception(type(exc), exc, tb.tb_next if tb else None))
