"""The task decorator's result, and the message envelope it enqueues."""

from __future__ import annotations

import dataclasses
import datetime as dt
import difflib
import functools
import inspect
import os
import re
import time
from collections.abc import Callable, Coroutine, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Concatenate, Generic, ParamSpec, Protocol, TypeVar, overload

from scoter.retry import Budget, RetryPolicy
from scoter.storage.coordination import TaskLimit
from scoter.times import Moment, to_eta

if TYPE_CHECKING:
    from psycopg import Connection

    from scoter.app import Scoter
    from scoter.context import TaskContext
    from scoter.flows import Pipeline
    from scoter.result import Result, ResultGroup

P = ParamSpec("P")
R = TypeVar("R")

NAME = re.compile(r"[\w.:/-]{1,200}")
"""A task or queue name: 1 to 200 letters (any script's), digits and `_ . : / -`."""
ID = re.compile(r"[A-Za-z0-9_.:-]{1,200}")
"""A task id: 1 to 200 ASCII letters, digits and `_ . : -` (a UUID's hex, with or without
dashes, fits)."""
NAME_RULE = "1 to 200 letters, digits and _ . : / -"
ID_RULE = "1 to 200 ASCII letters, digits and _ . : -"


def check_name(kind: str, name: object) -> str:
    """`name` if it is a valid task or queue name (`kind` says which), else ValueError.

    Names go into storage keys and onto terminals: braces, spaces, control characters and
    markup are refused here, so no name can reach into another's keys (docs/security.md).
    """
    if not isinstance(name, str) or NAME.fullmatch(name) is None:
        raise ValueError(f"bad {kind} name {name!r}: use {NAME_RULE}, e.g. 'billing.invoice'")
    return name


def check_id(task_id: object) -> str:
    """`task_id` if it is a valid task id, else ValueError."""
    if not isinstance(task_id, str) or ID.fullmatch(task_id) is None:
        raise ValueError(f"bad task id {task_id!r}: use {ID_RULE}, e.g. 'invoice-2024-0042'")
    return task_id


def new_id() -> str:
    """A random task id: a version 4 UUID as 32 hex digits, as `uuid.uuid4().hex` gives (at a
    third of the cost: no UUID object)."""
    raw = bytearray(os.urandom(16))
    raw[6] = raw[6] & 0x0F | 0x40  # version 4
    raw[8] = raw[8] & 0x3F | 0x80  # RFC 4122 variant
    return raw.hex()


@dataclass(frozen=True, slots=True)
class Message:
    """One call of a task, as a producer enqueues it and a consumer decodes it."""

    task: str
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)
    id: str = field(default_factory=new_id)
    queue: str | None = None
    """None: the task's own queue."""
    priority: int | None = None
    eta: float | None = None
    """Seconds since the epoch; None runs as soon as possible."""
    headers: dict[str, str] = field(default_factory=dict)
    """Free-form metadata (trace context, tenant, …), carried to the consumer."""
    expires: float | None = None
    """Seconds since the epoch: not started by then, the task ends dead `expired`. None: the
    task's own `expires`, counted from the enqueue."""
    unique_key: str | None = None
    """While a task of this name and key is scheduled, queued or running, enqueueing this
    message returns that task's Result instead of storing a second one (None: a `unique` task's
    key comes from its arguments; any other task has none)."""
    budget: Budget | None = None
    """This call's own retries, retry delays and time limit, over its task's (None: the
    task's)."""

    def then(
        self, task: Task[Any, Any] | Message | Pipeline, *args: Any, **kwargs: Any
    ) -> Pipeline:
        """A pipeline: this call, then `task(this call's result, *args, **kwargs)` once it
        succeeded (see scoter.flows). `app.enqueue(pipeline)` returns a ResultGroup."""
        from scoter.flows import Pipeline

        return Pipeline(self).then(task, *args, **kwargs)

    def error(
        self, task: Task[Any, Any] | Message | Pipeline, *args: Any, **kwargs: Any
    ) -> Pipeline:
        """A pipeline of this call alone, with an error handler (see `Pipeline.error`); as a
        step of another pipeline (`.then(task.s(...).error(handler))`), that step's own."""
        from scoter.flows import Pipeline

        return Pipeline(self).error(task, *args, **kwargs)


CTX = "ctx"
"""The parameter through which a `context=True` task is given its TaskContext."""
CONTEXT_HINT = (
    "; scoter passes a parameter named ctx only to tasks registered with @app.task(context=True)"
)


TASK_OPTIONS = (
    "name", "queue", "priority", "context", "timeout", "expires",
    *(f.name for f in dataclasses.fields(RetryPolicy)),
    "unique", "concurrency", "rate_limit",
)  # fmt: skip
"""The options of `@app.task(...)` and `@app.periodic_task(...)`."""
OTHER_QUEUES_OPTIONS = {
    "bind": "scoter's is context=True",
    "max_retries": "scoter's is retries",
    "default_retry_delay": "scoter's is retry_delay",
    "time_limit": "scoter's is timeout",
}
"""Options of Huey's and Celery's tasks that scoter spells another way or lacks."""


def check_options(options: dict[str, Any]) -> None:
    """Raise TypeError naming each unknown task option, what it may have meant, and the
    options there are."""
    unknown = [name for name in options if name not in TASK_OPTIONS]
    if not unknown:
        return
    notes = []
    for name in unknown:
        close = difflib.get_close_matches(name, TASK_OPTIONS, n=1)
        note = OTHER_QUEUES_OPTIONS.get(name) or (f"did you mean {close[0]}?" if close else "")
        notes.append(f"{name}" + (f" ({note})" if note else ""))
    raise TypeError(
        f"unknown task option(s): {', '.join(notes)}; the options are {', '.join(TASK_OPTIONS)}"
    )


class CallCheck:
    """A task function's signature without its ctx: checks each call's arguments when it is
    enqueued, so that a wrong call raises TypeError in the producer, not on a consumer.

    A call of a function of plain positional-or-keyword parameters is checked by counting
    (~0.2 µs); any other call by `inspect.Signature.bind` (~2 µs), which also words the error.
    """

    __slots__ = ("_index", "_least", "_names", "_signature", "ctx_first", "needs_ctx")

    def __init__(self, fn: Callable[..., Any], *, context: bool) -> None:
        try:
            parameters = list(inspect.signature(fn).parameters.values())
        except (TypeError, ValueError):  # a callable without a signature: nothing to check
            parameters = [inspect.Parameter("args", inspect.Parameter.VAR_POSITIONAL)]
            parameters.append(inspect.Parameter("kwargs", inspect.Parameter.VAR_KEYWORD))
        self.ctx_first = bool(context and parameters and _takes_ctx_first(parameters[0]))
        """The function's first parameter is ctx, passed positionally (`def f(ctx, n)`)."""
        self.needs_ctx = not context and any(
            p.name == CTX and p.default is p.empty and p.kind is not p.VAR_KEYWORD
            for p in parameters
        )
        """It has a ctx parameter without a default, yet it is not registered with context."""
        if context:
            _check_takes_ctx(fn, parameters)
            parameters = [p for p in parameters if p.name != CTX]
        self._signature = inspect.Signature(parameters)
        plain = all(p.kind is p.POSITIONAL_OR_KEYWORD for p in parameters)
        self._index = {p.name: i for i, p in enumerate(parameters)} if plain else None
        """A plain function's parameter positions: such a call is checked by counting."""
        self._names = [p.name for p in parameters]
        self._least = sum(p.default is p.empty for p in parameters)

    def __call__(self, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        """Raise TypeError, naming task `name`, when the function cannot take these arguments."""
        if self._index is not None and self._fits(len(args), kwargs, self._index):
            return
        try:
            self._signature.bind(*args, **kwargs)
        except TypeError as exc:
            hint = CONTEXT_HINT if self.needs_ctx and repr(CTX) in str(exc) else ""
            raise TypeError(
                f"task {name!r} cannot be called with these arguments: {exc}{hint}"
            ) from None

    def _fits(self, given: int, kwargs: dict[str, Any], index: dict[str, int]) -> bool:
        """Whether a plain function takes `given` positional arguments and `kwargs`: each
        keyword names a parameter after them, and together they cover the required ones."""
        if given > len(index):
            return False
        if not kwargs:
            return given >= self._least
        return all(index.get(key, -1) >= given for key in kwargs) and all(
            name in kwargs for name in self._names[given : self._least]
        )


def _takes_ctx_first(parameter: inspect.Parameter) -> bool:
    positional = (parameter.POSITIONAL_ONLY, parameter.POSITIONAL_OR_KEYWORD)
    return parameter.name == CTX and parameter.kind in positional


def _check_takes_ctx(fn: Callable[..., Any], parameters: list[inspect.Parameter]) -> None:
    takes = (CTX in {p.name for p in parameters if p.kind is not p.VAR_POSITIONAL}) or any(
        p.kind is p.VAR_KEYWORD for p in parameters
    )
    if not takes:
        name = getattr(fn, "__name__", repr(fn))
        raise TypeError(
            f"{name} is registered with context=True but has no ctx parameter: write "
            f"def {name}(ctx: TaskContext, ...) (or drop context=True)"
        )


class Task(Generic[P, R]):
    """A function registered with an app. Calling it enqueues a run and returns a Result.

    P is how the task is called: the function's parameters, less a first `ctx` of a
    `context=True` task. R is what its Result holds.
    """

    def __init__(
        self,
        app: Scoter,
        fn: Callable[..., Any],
        *,
        name: str,
        queue: str,
        priority: int,
        policy: RetryPolicy,
        context: bool,
        timeout: float | None = None,
        expires: Moment | None = None,
        unique: bool = False,
        limit: TaskLimit | None = None,
    ) -> None:
        self.app = app
        self.fn = fn
        self.name = name
        self.queue = queue
        self.priority = priority
        self.policy = policy
        self.context = context
        self.timeout = timeout
        """Seconds an attempt may run (see the executors for how each enforces it)."""
        self.expires = expires
        """A run not started this long after its enqueue (seconds, timedelta) or by then (a
        datetime) ends dead `expired`; None: never."""
        self.unique = unique
        """Whether a call is left out while a live task has the same arguments."""
        self.limit = limit or TaskLimit(name)
        """Its concurrency and rate limits, which every claim keeps."""
        self.check_call = CallCheck(fn, context=context)
        """Raises TypeError when the function cannot take a call's arguments."""
        functools.update_wrapper(self, fn)

    def __repr__(self) -> str:
        return f"<Task {self.name} queue={self.queue}>"

    def invoke(self, args: tuple[Any, ...], kwargs: dict[str, Any], ctx: TaskContext | None) -> Any:
        """Call the function for one attempt, giving it `ctx` when it asked for it."""
        if not self.context:
            return self.fn(*args, **kwargs)
        if self.check_call.ctx_first:
            return self.fn(ctx, *args, **kwargs)
        return self.fn(*args, **{**kwargs, CTX: ctx})

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> Result[R]:
        """Enqueue a run with these arguments (as `app.enqueue_message(self.s(...))`)."""
        return self.app._enqueue_call(self.name, args, kwargs)

    async def aenqueue(self, *args: P.args, **kwargs: P.kwargs) -> Result[R]:
        """Enqueue from a coroutine without blocking the event loop."""
        return await self.app.aenqueue(Message(self.name, args, kwargs))

    def enqueue_in(self, conn: Connection[Any], *args: P.args, **kwargs: P.kwargs) -> Result[R]:
        """Enqueue a run inside the caller's open transaction on `conn` (PostgreSQL): it
        exists only once that transaction commits. See `Scoter.enqueue_in`."""
        return self.app.enqueue_in(conn, [Message(self.name, args, kwargs)])[0]

    def s(self, *args: P.args, **kwargs: P.kwargs) -> Message:
        """A message for this call, to pass to `app.enqueue` or `app.enqueue_many`."""
        return Message(self.name, args, kwargs)

    def with_options(
        self,
        *,
        delay: float | dt.timedelta | None = None,
        eta: float | dt.datetime | None = None,
        priority: int | None = None,
        id: str | None = None,
        expires: Moment | None = None,
        unique_key: str | None = None,
    ) -> Call[P, R]:
        """`schedule()` with arguments a type checker checks: `task.with_options(delay=60)(x)`
        enqueues `task(x)` to run in a minute."""
        return Call(self, to_eta(delay, eta), priority, id, expires, unique_key)

    def schedule(
        self,
        args: Iterable[Any] = (),
        kwargs: dict[str, Any] | None = None,
        *,
        delay: float | dt.timedelta | None = None,
        eta: float | dt.datetime | None = None,
        priority: int | None = None,
        id: str | None = None,
        expires: Moment | None = None,
        unique_key: str | None = None,
    ) -> Result[R]:
        """Enqueue a run that starts after `delay` seconds or at `eta` (Huey's signature; the
        arguments are checked when called, `with_options` also has them type-checked).

        A datetime `eta` or `expires` that is naive is read as local time. `expires`: seconds
        or a timedelta from now, or a datetime; a run not started by then ends dead `expired`
        (default: the task's own `expires`). With `unique_key`, only while no task of this name
        with that key is live.
        """
        message = Message(
            self.name, tuple(args), dict(kwargs or {}), id=id or new_id(),
            priority=priority, eta=to_eta(delay, eta),
            expires=self.app.expiry(self, expires, time.time()), unique_key=unique_key,
        )  # fmt: skip
        return self.app.enqueue_message(message)

    def map(self, argument_lists: Iterable[Iterable[Any]]) -> ResultGroup:
        """Enqueue one run per argument list, all in one storage call (each list is checked
        when called; `app.enqueue_many(task.s(...) for ...)` also has them type-checked); their
        results in a ResultGroup (`get()` gives the values, in order)."""
        from scoter.result import ResultGroup

        messages = (Message(self.name, tuple(a)) for a in argument_lists)
        return ResultGroup(self.app.enqueue_many(messages))

    # -- revocation (Huey's names) -----------------------------------------------------------

    def revoke(self, revoke_until: Moment | None = None, revoke_once: bool = False) -> None:
        """Revoke every run of this task not started yet, including those enqueued later:
        each ends dead `revoked` when a consumer claims it. `revoke_until`: only until then
        (seconds or timedelta from now, or a datetime); `revoke_once`: only the next run.
        Running ones finish. Undo with `restore()`. See `Scoter.revoke_all`."""
        self.app.revoke_all(self, revoke_until=revoke_until, revoke_once=revoke_once)

    def restore(self) -> bool:
        """Lift this task's revocation; True if there was one. Runs it already ended stay
        dead `revoked` (restore them by id)."""
        return self.app.restore_all(self)

    def is_revoked(self, timestamp: float | None = None) -> bool:
        """Whether runs of this task claimed now (or at `timestamp`) would be revoked."""
        return self.app.is_revoked(self, timestamp)

    def call_local(self, *args: P.args, **kwargs: P.kwargs) -> R:
        """Run the function here and now, without the queue (a `context=True` task's ctx is
        None unless given)."""
        result: R = (
            self.invoke(args, kwargs, None) if CTX not in kwargs else self.fn(*args, **kwargs)
        )
        return result


class AsyncTask(Task[P, R]):
    """A task whose function is `async def`: it runs on a worker started with `-k asyncio`,
    and its Result holds what the coroutine returns."""

    def call_local(  # type: ignore[override]  # the coroutine, for the caller to await
        self, *args: P.args, **kwargs: P.kwargs
    ) -> Coroutine[Any, Any, R]:
        """The function's coroutine, to await here, without the queue."""
        coroutine: Coroutine[Any, Any, R] = super().call_local(*args, **kwargs)  # type: ignore[assignment]
        return coroutine


@dataclass(frozen=True, slots=True)
class Call(Generic[P, R]):
    """A task with its enqueue options, waiting for its arguments (`Task.with_options`)."""

    task: Task[P, R]
    eta: float | None
    priority: int | None
    id: str | None
    expires: Moment | None = None
    """Counted from each call (seconds, timedelta), or a datetime."""
    unique_key: str | None = None

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> Result[R]:
        message = Message(
            self.task.name, args, kwargs, id=self.id or new_id(), priority=self.priority,
            eta=self.eta, expires=self.task.app.expiry(self.task, self.expires, time.time()),
            unique_key=self.unique_key,
        )  # fmt: skip
        return self.task.app.enqueue_message(message)


class TaskDecorator(Protocol):
    """What `@app.task(...)` returns: it registers a function as a task."""

    @overload
    def __call__(self, fn: Callable[P, Coroutine[Any, Any, R]], /) -> AsyncTask[P, R]: ...

    @overload
    def __call__(self, fn: Callable[P, R], /) -> Task[P, R]: ...


class ContextTaskDecorator(Protocol):
    """What `@app.task(context=True, ...)` returns. A function whose first parameter is its
    TaskContext (`def f(ctx: TaskContext, n: int)`) becomes a task called without it
    (`f(5)`); a ctx elsewhere is passed too, but type checkers then expect it in each call."""

    @overload
    def __call__(
        self, fn: Callable[Concatenate[TaskContext, P], Coroutine[Any, Any, R]], /
    ) -> AsyncTask[P, R]: ...

    @overload
    def __call__(self, fn: Callable[Concatenate[TaskContext, P], R], /) -> Task[P, R]: ...

    @overload
    def __call__(self, fn: Callable[P, Coroutine[Any, Any, R]], /) -> AsyncTask[P, R]: ...

    @overload
    def __call__(self, fn: Callable[P, R], /) -> Task[P, R]: ...
