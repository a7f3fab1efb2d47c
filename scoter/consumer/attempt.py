"""One attempt: decode a leased message and run its task, producing an `Outcome`.

This is all a process-executor child needs: it writes nothing but the task's own checkpoints
and progress. What an outcome means for the task — ack, retry, release, dead, crash — is the
policy's (`scoter.consumer.policy`), written by the settler (`scoter.consumer.settler`).
"""

from __future__ import annotations

import datetime as dt
import inspect
import os
import threading
import time
import traceback
from dataclasses import dataclass, field, fields, replace
from operator import attrgetter
from typing import TYPE_CHECKING, Any

import scoter
from scoter import signals as sig
from scoter.context import TaskContext, deactivate
from scoter.envelope import check_size
from scoter.exceptions import Cancel, Interrupt, RemoteError, TimedOut
from scoter.flows import after_success, gathered
from scoter.flows_wire import StepFlow
from scoter.retry import Budget
from scoter.states import EXPIRED
from scoter.storage.base import Flow, Lease
from scoter.task import CONTEXT_HINT

if TYPE_CHECKING:
    from scoter.app import Scoter
    from scoter.task import Task

SUCCEEDED = "succeeded"
FAILED = "error"
INTERRUPTED = "interrupted"
UNDELIVERABLE = "undeliverable"
CRASHED = "crashed"
CANCELED = "canceled"
"""The dead reason of a task that raised `Cancel` (or whose pre_execute hook did)."""

NEEDS_ASYNCIO = "needs asyncio"
"""The dead reason of an `async def` task run by a thread or process worker."""

LOST_BEFORE_START = "lease lost before the attempt started"
RUNNER_FILES = frozenset(
    os.path.join(os.path.dirname(scoter.__file__), *path)
    for path in (("consumer", "attempt.py"), ("consumer", "aio.py"), ("task.py",))
)
"""The files of the frames that call a task's function, left out of its traceback."""


@dataclass(frozen=True, slots=True)
class Outcome:
    """How an attempt ended, in a form that crosses process boundaries (no live objects
    but `exc`, which stays in the process that ran the task)."""

    kind: str
    """SUCCEEDED, FAILED, INTERRUPTED, UNDELIVERABLE or CRASHED."""
    result: bytes | None = None
    error: str | None = None
    """The traceback (FAILED), or the reason's detail (the other kinds)."""
    summary: str = ""
    """One line for logs: `ValueError('x')`."""
    reason: str = ""
    """UNDELIVERABLE: the dead reason (`unknown task`, `undecodable`)."""
    delay: float = 0.0
    """INTERRUPTED: seconds before the released task may be claimed again."""
    ran_s: float = 0.0
    """How long the task's code ran."""
    expires: float | None = None
    """The task's expiry, once decoded: a retry that would start after it ends it expired."""
    flow: Flow | None = None
    """SUCCEEDED, for a pipeline or chord step: what its ack hands on (scoter.flows)."""
    budget: Budget | None = None
    """The message's own retries and retry delays, once decoded (None: its task's)."""
    exc: BaseException | None = field(default=None, compare=False)

    @classmethod
    def succeeded(
        cls, result: bytes | None, ran_s: float = 0.0, flow: Flow | None = None
    ) -> Outcome:
        # Positional: every task's outcome, and a frozen dataclass's keywords cost.
        return cls(SUCCEEDED, result, None, "", "", 0.0, ran_s, None, flow)

    @classmethod
    def failed(cls, exc: BaseException, ran_s: float = 0.0, hint: str = "") -> Outcome:
        """The task raised `exc`; `hint` (what to do about it) follows its traceback."""
        error = _format_error(exc) + (f"hint: {hint}\n" if hint else "")
        return cls(FAILED, error=error, summary=repr(exc), ran_s=ran_s, exc=exc)

    @classmethod
    def interrupted(cls, why: str, delay: float = 0.0) -> Outcome:
        return cls(INTERRUPTED, error=why, summary=why, delay=delay)

    @classmethod
    def undeliverable(cls, reason: str, detail: str) -> Outcome:
        return cls(UNDELIVERABLE, error=detail, summary=detail, reason=reason)

    @classmethod
    def crashed(cls, detail: str) -> Outcome:
        return cls(CRASHED, error=detail, summary=detail)

    def exception(self) -> BaseException:
        """The exception for signal receivers; a stand-in when it ran in another process."""
        return self.exc or RemoteError(self.summary)

    def __reduce__(self) -> tuple[type[Outcome], tuple[object, ...]]:
        """Pickled without the live exception (it stays in the process that ran the task),
        as plain fields: quicker than a dataclass's generic state."""
        return Outcome, _OUTCOME_FIELDS(self)


class Undeliverable(Exception):
    """The message cannot run now; `outcome()` says what becomes of it: dead with `reason`
    (or, for `Early`, handed back)."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason

    def outcome(self) -> Outcome:
        return Outcome.undeliverable(self.reason, str(self))


class Early(Undeliverable):
    """The task was claimed before the eta its producer signed: it is handed back until then
    (its record was moved forward, or the producer's clock runs ahead of the storage's)."""

    def __init__(self, detail: str, delay: float) -> None:
        super().__init__(INTERRUPTED, detail)
        self.delay = delay

    def outcome(self) -> Outcome:
        return Outcome.interrupted(str(self), self.delay)


ETA_SLACK_S = 1.0
"""How much earlier than its signed eta a signed task may be claimed and still run: rounding
and the clocks of one host. Claimed earlier, it is handed back until its eta."""


def new_context(
    app: Scoter, lease: Lease, lease_s: float, asked: float | None = None
) -> TaskContext:
    """The context of one attempt of `lease`, held for `lease_s` seconds at a time.

    :param asked: when the claim that granted the lease was sent (time.monotonic()).
    """
    task = app.tasks.get(lease.name)
    timeout = task.timeout if task else None
    ctx = TaskContext(lease, app.storage, app.serializer, timeout, signer=app.signer)
    ctx.result_ttl = app.result_ttl
    ctx.lease_s = lease_s
    if asked is not None:
        ctx.renewed_at = asked
    return ctx


def decode(app: Scoter, ctx: TaskContext) -> tuple[Task[Any, Any], tuple[Any, ...], dict[str, Any]]:
    """The task and its arguments; raises Undeliverable when the message cannot run here
    (Early when it may run later; reason EXPIRED when claimed after its `expires`)."""
    lease = ctx.lease
    task = app.tasks.get(lease.name)
    if task is None:
        known = ", ".join(sorted(app.tasks)) or "none"
        raise Undeliverable(
            "unknown task",
            f"no task named {lease.name!r} is registered in app {app.name!r} "
            f"(known: {known}); deploy the code that defines it, then `scoter dead retry`",
        )
    try:
        args, kwargs, headers, expires, flow, eta, budget = app.decode_claimed(lease)
        ctx.flow = None if flow is None else StepFlow.read(flow)
    except Exception as exc:  # DecodeError, or a serializer's own failure
        raise Undeliverable("undecodable", f"payload of {lease.name!r}: {exc}") from exc
    if headers:
        ctx.set_headers(headers)
    claimed_at = lease.expires - ctx.lease_s  # the storage's clock, which promoted the task
    if eta is not None and claimed_at < eta - ETA_SLACK_S:
        raise Early(f"claimed {eta - claimed_at:.1f} s before its signed eta", eta - claimed_at)
    if expires is not None and claimed_at > expires:
        raise Undeliverable(EXPIRED, expired_detail(expires, claimed_at, "claimed"))
    ctx.expires = expires
    if budget:
        ctx.budget = budget
        if budget.timeout is not None:
            ctx.limit_time(budget.timeout)
    return task, args, kwargs


def expired_detail(expires: float, at: float, what: str) -> str:
    """Why a task is dead `expired`: it was `what` (claimed, due again) `at`, past `expires`."""
    stamp = dt.datetime.fromtimestamp(expires, dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
    return f"not started before it expired at {stamp} UTC ({what} {at - expires:.1f} s later)"


def execute(app: Scoter, ctx: TaskContext) -> Outcome:
    """Decode and run one attempt in this thread. Never raises for anything the task does."""
    if ctx.lease_lost:
        return Outcome.interrupted(LOST_BEFORE_START)
    try:
        task, args, kwargs = decode(app, ctx)
    except Undeliverable as bad:
        return bad.outcome()
    executing(app, ctx, args, kwargs)
    return run(app, task, args, kwargs, ctx)


def executing(app: Scoter, ctx: TaskContext, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    """The attempt starts: its task reference now carries the arguments; signal it."""
    lease = ctx.lease
    ctx.ref = sig.TaskRef(lease.id, lease.name, lease.queue, args, kwargs, lease.attempt)
    if app.signals:
        app.signals.send(sig.SIGNAL_EXECUTING, ctx.ref)


def run(
    app: Scoter,
    task: Task[Any, Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    ctx: TaskContext,
) -> Outcome:
    """Call the task's function; what happened, with the result encoded.

    Whatever the task raises is its attempt's error — `SystemExit` and other BaseExceptions
    too (a click command's `main()` called from a task exits that way): the worker goes on.
    """
    token = ctx.activate()
    traced = None if app.tracing is None else app.tracing.attempt(ctx, task)
    outcome = None
    try:
        outcome = finished(ctx, task, _call(app, task, args, kwargs, ctx))
        return outcome
    finally:
        deactivate(token)
        if traced is not None:
            traced.end(outcome)


def _call(
    app: Scoter,
    task: Task[Any, Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    ctx: TaskContext,
) -> Outcome:
    started = time.monotonic()
    hooks = app.hooks
    started_fn = not hooks.pre
    try:
        if hooks.pre:
            hooks.before(ctx)  # Cancel here: the function never starts
            started_fn = True
        if ctx.flow is not None:
            args = with_gathered(app, ctx, args)
        value = task.invoke(args, kwargs, ctx)
        if inspect.iscoroutine(value):
            value.close()
            return Outcome.undeliverable(NEEDS_ASYNCIO, needs_asyncio(task.name))
        outcome = succeeded(app, ctx, value, time.monotonic() - started)
        if hooks.post:
            hooks.after(ctx, value, None)
        return outcome
    except Interrupt as exc:
        _after(app, ctx, exc)
        return Outcome.interrupted(interrupt_reason(exc), exc.delay)
    except Cancel as exc:
        if started_fn:
            _after(app, ctx, exc)
        return Outcome.undeliverable(CANCELED, str(exc) or "the task was canceled")
    except BaseException as exc:
        _after(app, ctx, exc)
        if (
            isinstance(exc, KeyboardInterrupt)
            and threading.current_thread() is threading.main_thread()
        ):
            raise  # Ctrl-C in immediate mode stops the program, not the task
        return Outcome.failed(exc, time.monotonic() - started, _hint(task, exc))


def interrupt_reason(exc: Interrupt) -> str:
    """Why a task that raised `exc` is handed back, as its history records it."""
    return f"the task raised Interrupt: {exc}" if str(exc) else "the task raised Interrupt"


def _after(app: Scoter, ctx: TaskContext, exc: BaseException) -> None:
    """The post-execute hooks of an attempt that raised."""
    if app.hooks.post:
        app.hooks.after(ctx, None, exc)


def finished(ctx: TaskContext, task: Task[Any, Any], outcome: Outcome) -> Outcome:
    """The outcome of an attempt whose task's code returned or raised (`timed_out`), carrying
    the task's expiry and the message's own budget."""
    outcome = timed_out(ctx, task, outcome)
    if ctx.expires is None and ctx.budget is None:
        return outcome
    return replace(outcome, expires=ctx.expires, budget=ctx.budget)


def needs_asyncio(name: str) -> str:
    """The dead detail of a task whose function returned a coroutine on a thread or process
    worker."""
    return (
        f"task {name!r} is an async def function (it returned a coroutine): run it on a "
        "worker started with -k asyncio (scoter worker APP -k asyncio -Q its queue), then "
        "`scoter dead retry`"
    )


def _hint(task: Task[Any, Any], exc: BaseException) -> str:
    """What to do about an error the task's registration explains: a ctx it was not given."""
    if task.check_call.needs_ctx and isinstance(exc, TypeError) and "'ctx'" in str(exc):
        return CONTEXT_HINT.removeprefix("; ")
    return ""


def timed_out(ctx: TaskContext, task: Task[Any, Any], outcome: Outcome) -> Outcome:
    """An attempt that ran past its time limit counts as timed out, unless it handed back."""
    if ctx.timed_out and outcome.kind != INTERRUPTED:
        exc = TimedOut(f"the task ran past its {ctx.timeout} s time limit")
        return Outcome.failed(exc, outcome.ran_s)
    return outcome


def with_gathered(app: Scoter, ctx: TaskContext, args: tuple[Any, ...]) -> tuple[Any, ...]:
    """The arguments of the attempt: a chord's callback gets its members' results first."""
    if ctx.flow is None or ctx.flow.gather is None:
        return args
    return (gathered(app, ctx.flow), *args)


def succeeded(app: Scoter, ctx: TaskContext, value: Any, ran_s: float) -> Outcome:
    """The outcome of an attempt that returned `value`: its result encoded, and for a flow
    step what its ack hands on. Raises what encoding raises (the attempt's error then)."""
    result = encode_result(app, value, ctx.task_id)
    flow = None if ctx.flow is None else after_success(app, ctx.flow, value)
    return Outcome.succeeded(result, ran_s, flow)


def encode_result(app: Scoter, value: Any, task_id: str) -> bytes | None:
    if value is None or app.result_ttl == 0:
        return None
    try:
        data = app.encode_result(value, task_id)
    except TypeError as exc:
        raise TypeError(f"the task's return value cannot be stored: {exc}") from exc
    check_size(data, app.max_result_bytes, "the task's result", "max_result_bytes")
    return data


_OUTCOME_FIELDS = attrgetter(*(f.name for f in fields(Outcome) if f.name != "exc"))


def _format_error(exc: BaseException) -> str:
    """The traceback from the task's own frames on (the executor's, running it, left out)."""
    tb = exc.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename in RUNNER_FILES:
        tb = tb.tb_next
    return "".join(traceback.format_exception(type(exc), exc, tb))
