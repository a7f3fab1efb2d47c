"""Where Huey's API meets scoter's: registering a Huey task as a scoter task, running it the
Huey way, Huey's hooks and signals on scoter's, enqueueing Huey task objects, and Huey's
locks and rate limits on scoter's.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import time
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from scoter import exceptions as scoter_exceptions
from scoter import signals as scoter_signals
from scoter.exceptions import Cancel, DecodeError, Interrupt, TimedOut
from scoter.huey import pipelines
from scoter.huey import signals as S
from scoter.huey.exceptions import (
    CancelExecution,
    ConfigurationError,
    RateLimitExceeded,
    RetryTask,
    TaskLockedException,
    TaskTimeout,
)
from scoter.huey.pipelines import FOLLOWS, STAND_IN, huey_order
from scoter.huey.results import ChordResult, Result, ResultGroup
from scoter.huey.schedules import schedule_of
from scoter.huey.tasks import Task, TaskWrapper, chord, group
from scoter.huey.utils import from_timestamp, to_timestamp
from scoter.task import Message

if TYPE_CHECKING:
    from scoter.app import Scoter
    from scoter.context import TaskContext
    from scoter.huey.api import Huey
    from scoter.storage.base import Lease, TaskInfo
    from scoter.task import Task as ScoterTask

log = logging.getLogger("huey")

DEQUEUE_LEASE_S = 60.0
"""The lease of a task taken by `huey.dequeue()`: nothing renews it."""
OWN_SIGNALS = (CancelExecution, TaskLockedException, RateLimitExceeded, TaskTimeout)
"""Exceptions whose Huey signal the runner sends itself (not SIGNAL_ERROR)."""
FORWARDED = frozenset(
    (S.SIGNAL_ENQUEUED, S.SIGNAL_EXECUTING, S.SIGNAL_COMPLETE, S.SIGNAL_ERROR,
     S.SIGNAL_RETRYING, S.SIGNAL_INTERRUPTED, S.SIGNAL_REVOKED, S.SIGNAL_EXPIRED)
)  # fmt: skip
"""scoter's signals that Huey's receivers hear, under the same names."""

_attempts: weakref.WeakKeyDictionary[TaskContext, Task] = weakref.WeakKeyDictionary()
_dequeued: dict[str, Lease] = {}
_warned: set[str] = set()


# -- registering -------------------------------------------------------------------------------


def connect(huey: Huey) -> None:
    """Hook the Huey app's hooks and signals into its scoter app."""
    hooks = huey.app.hooks
    hooks.pre_execute(functools.partial(_pre_execute, huey))
    hooks.post_execute(functools.partial(_post_execute, huey))
    hooks.on_startup(functools.partial(_call_all, huey._startup, "on_startup"))
    hooks.on_shutdown(functools.partial(_call_all, huey._shutdown, "on_shutdown"))
    pipelines.register_stand_in(huey)


def listen(huey: Huey) -> None:
    """Pass scoter's signals on to the Huey app's receivers (from its first receiver on)."""
    if not huey._listening:
        huey._listening = True
        huey.app.signals.connect(functools.partial(_forward, huey))


def register(huey: Huey, wrapper: TaskWrapper) -> ScoterTask[Any, Any]:
    """Register `wrapper`'s function with scoter, as a task that runs it the Huey way."""
    cls = wrapper.task_class

    def run(*args: Any, ctx: TaskContext, **kwargs: Any) -> Any:
        return run_task(huey, attempt_task(huey, ctx, args, kwargs))

    run.__name__ = run.__qualname__ = wrapper.name
    run.__module__ = wrapper.func.__module__
    options: dict[str, Any] = {
        "name": wrapper.scoter_name, "retries": cls.default_retries,
        "retry_delay": cls.default_retry_delay, "retry_backoff": cls.default_retry_backoff or 1.0,
        "priority": cls.default_priority or 0, "context": True, "timeout": cls.default_timeout,
    }  # fmt: skip
    if cls.default_expires is not None:
        options["expires"] = cls.default_expires
    options.update((k, v) for k, v in wrapper.settings.items() if k in _scoter_task_options())
    validate = wrapper.settings.get("validate_datetime")
    if validate is None:
        task: ScoterTask[Any, Any] = huey.app.task(**options)(run)
    else:
        schedule = schedule_of(validate.__func__, huey.utc)
        task = huey.app.periodic_task(schedule, **options)(run)
    huey.wrappers[wrapper.scoter_name] = wrapper
    return task


def _scoter_task_options() -> tuple[str, ...]:
    from scoter.huey.api import SCOTER_TASK_OPTIONS

    return SCOTER_TASK_OPTIONS


# -- running -----------------------------------------------------------------------------------


def attempt_task(
    huey: Huey, ctx: TaskContext, args: tuple[Any, ...] | None = None, kwargs: Any = None
) -> Task:
    """The Huey Task of this attempt, made once (the pre_execute hooks see the same one)."""
    task = _attempts.get(ctx)
    if task is not None:
        return task
    if args is None:
        ref = ctx.ref
        args, kwargs = (ref.args, ref.kwargs) if ref is not None else ((), {})
    kwargs = dict(kwargs or {})
    if kwargs.pop(FOLLOWS, False) and args:
        args, kwargs = huey_order(args, kwargs)
    wrapper = huey.wrappers[ctx.task_name]
    retries = wrapper.scoter_task.policy.retries
    task = wrapper.task_class(args, dict(kwargs or {}), id=ctx.task_id,
                              retries=max(0, retries - ctx.lease.errors))  # fmt: skip
    task.scoter_context = ctx
    _attempts[ctx] = task
    return task


def run_task(huey: Huey, task: Task) -> Any:
    """Call the task's function; Huey's exceptions become scoter's outcomes."""
    try:
        return task.execute()
    except RetryTask as exc:
        raise Interrupt(f"RetryTask: {exc}", delay=_retry_delay(exc, task)) from exc
    except CancelExecution as exc:
        huey._emit(S.SIGNAL_CANCELED, task)
        if exc.retry is False:
            raise Cancel(f"CancelExecution: {exc}" if str(exc) else "CancelExecution") from exc
        if exc.retry and not task.retries:
            raise Interrupt("CancelExecution(retry=True)") from exc
        raise
    except TaskLockedException:
        huey._emit(S.SIGNAL_LOCKED, task)
        raise
    except RateLimitExceeded as exc:
        huey._emit(S.SIGNAL_RATE_LIMITED, task)
        if exc.retry:
            raise Interrupt(str(exc), delay=task.retry_delay or exc.delay) from exc
        raise
    except TaskTimeout:
        huey._emit(S.SIGNAL_TIMEOUT, task)
        raise


def _retry_delay(exc: RetryTask, task: Task) -> float:
    if exc.eta is not None:
        at = to_timestamp(exc.eta, False) or 0.0
        return max(0.0, at - time.time())
    if exc.delay is not None:
        delay = exc.delay
        return float(delay.total_seconds() if isinstance(delay, dt.timedelta) else delay)
    return float(task.retry_delay or 0.0)


def _pre_execute(huey: Huey, ctx: TaskContext) -> None:
    if not huey._pre_execute or ctx.task_name not in huey.wrappers:
        return
    task = attempt_task(huey, ctx)
    for name, hook in list(huey._pre_execute.items()):
        try:
            hook(task)
        except CancelExecution as exc:
            log.warning("Task %s cancelled by %s (pre-execute).", task, name)
            huey._emit(S.SIGNAL_CANCELED, task)
            raise Cancel(f"canceled by pre_execute hook {name!r}") from exc
        except Exception:
            log.exception("Unhandled exception calling pre-execute hook %s for %s.", name, task)


def _post_execute(huey: Huey, ctx: TaskContext, value: Any, exc: BaseException | None) -> None:
    if not huey._post_execute or ctx.task_name not in huey.wrappers:
        return
    task = attempt_task(huey, ctx)
    if isinstance(exc, (Interrupt, Cancel)) and exc.__cause__ is not None:
        exc = exc.__cause__
    for name, hook in list(huey._post_execute.items()):
        try:
            hook(task, value, exc)
        except Exception:
            log.exception("Unhandled exception calling post-execute hook %s for %s.", name, task)


def _call_all(hooks: dict[str, Callable[[], Any]], kind: str) -> None:
    for name, hook in list(hooks.items()):
        try:
            hook()
        except Exception:
            log.exception("Unhandled exception in %s hook %s.", kind, name)


def _forward(huey: Huey, name: str, ref: scoter_signals.TaskRef, *extra: Any) -> None:
    """Pass a scoter signal on to the Huey app's receivers, as Huey would send it."""
    if name not in FORWARDED:
        return
    if name == S.SIGNAL_COMPLETE:  # after it: what its ack stored, enqueued as in Huey
        handed = pipelines.handed_on(huey, ref.id)
        if ref.name != STAND_IN:
            huey._emit(name, task_of_ref(huey, ref))
        for task in handed:
            huey._emit(S.SIGNAL_ENQUEUED, task)
        return
    if ref.name == STAND_IN:
        return
    task = task_of_ref(huey, ref)
    if name == S.SIGNAL_ERROR:
        exc = extra[0] if extra else None
        if isinstance(exc, OWN_SIGNALS):
            return
        if isinstance(exc, TimedOut):
            huey._emit(S.SIGNAL_TIMEOUT, task)
        else:
            huey._emit(S.SIGNAL_ERROR, task, exc)
        return
    huey._emit(name, task)
    if name == S.SIGNAL_RETRYING and len(extra) > 1 and extra[1]:
        huey._emit(S.SIGNAL_SCHEDULED, task)


# -- task objects from scoter's records --------------------------------------------------------


def _task_class(huey: Huey, name: str) -> type[Task]:
    wrapper = huey.wrappers.get(name)
    return wrapper.task_class if wrapper is not None else Task


def task_of_ref(huey: Huey, ref: scoter_signals.TaskRef) -> Task:
    task = _task_class(huey, ref.name)(ref.args, dict(ref.kwargs), id=ref.id)
    if ref.name not in huey.wrappers:
        task.name = ref.name
    return task


def task_of_info(huey: Huey, info: TaskInfo) -> Task:
    """A stored task as Huey's `pending()` and `scheduled()` list it."""
    try:
        args, kwargs = huey.app.decode_message(info.payload)
    except (DecodeError, ValueError):
        args, kwargs = (), {}
    cls = _task_class(huey, info.name)
    return cls(args, kwargs, id=info.id, eta=from_timestamp(info.eta, huey.utc),
               priority=info.priority)  # fmt: skip


# -- enqueueing --------------------------------------------------------------------------------


def message_of(huey: Huey, task: Task) -> Message:
    """The scoter message of a Huey task object."""
    cls = type(task)
    if cls.wrapper is None:
        raise ConfigurationError(f"{task!r} is not a task of a Huey app: make it with task.s()")
    per_call = (task.retries, task.retry_delay, task.timeout)
    if per_call != (cls.default_retries, cls.default_retry_delay, cls.default_timeout):
        _warn_once(cls.wrapper.scoter_name, "per-call retries, retry_delay and timeout are not "
                   "applied: scoter takes them from @huey.task(...)")  # fmt: skip
    fields: dict[str, Any] = {"id": task.id, "priority": task.priority,
                              "eta": to_timestamp(task.eta, huey.utc)}  # fmt: skip
    if task.expires is not None:
        require(Message, "expires", "expiry")
        fields["expires"] = _expiry(task.expires)
    return Message(cls.wrapper.scoter_name, tuple(task.args), dict(task.kwargs), **fields)


def _expiry(expires: Any) -> float:
    if isinstance(expires, dt.datetime):
        return expires.timestamp()
    if isinstance(expires, dt.timedelta):
        expires = expires.total_seconds()
    return time.time() + float(expires)


def enqueue(huey: Huey, task: Task | group | chord) -> Result | ResultGroup | ChordResult | None:
    if isinstance(task, group):
        results = [enqueue(huey, t) for t in task.tasks]
        return ResultGroup([r for r in results if isinstance(r, Result)])
    if isinstance(task, chord) or task.on_complete or task.on_error:
        require(Message, "then", "pipelines")
        return pipelines.enqueue_flow(huey, task)
    huey.app.enqueue_message(message_of(huey, task))
    return Result(huey, task) if huey.results else None


def enqueue_many(huey: Huey, tasks: list[Task] | tuple[Task, ...]) -> ResultGroup | None:
    huey.app.enqueue_many([message_of(huey, t) for t in tasks])
    return ResultGroup([Result(huey, t) for t in tasks]) if huey.results else None


# -- driving tasks by hand ---------------------------------------------------------------------


def dequeue(huey: Huey) -> Task | None:
    """The next task, claimed for `execute`."""
    lease = _claim(huey)
    if lease is None:
        return None
    app = huey.app
    try:
        args, kwargs = app.decode_message(lease.payload)
    except (DecodeError, ValueError):
        args, kwargs = (), {}
    task = _task_class(huey, lease.name)(args, kwargs, id=lease.id)
    _dequeued[task.id] = lease
    return task


def _claim(huey: Huey, queues: list[str] | None = None) -> Lease | None:
    app = huey.app
    if queues is None:
        queues = sorted({app.default_queue} | {w.scoter_task.queue for w in huey.wrappers.values()})
    leases = app.storage.claim(queues, 1, DEQUEUE_LEASE_S, "huey-dequeue")
    if not leases and app.storage.promote(time.time()):
        leases = app.storage.claim(queues, 1, DEQUEUE_LEASE_S, "huey-dequeue")
    return leases[0] if leases else None


def execute(huey: Huey, task: Task) -> Any:
    """Run a dequeued task through scoter's attempt and policy (its outcome is stored); any
    other Task object runs here with the hooks, and its value is returned, not stored."""
    lease = _dequeued.pop(task.id, None)
    if lease is None:
        return _execute_here(huey, task)
    from scoter.consumer.attempt import SUCCEEDED

    outcome = _run(huey, lease)
    _run_stand_ins(huey)
    if outcome.kind != SUCCEEDED or outcome.result is None:
        return None
    return huey.app.decode_result(outcome.result, task.id)


def _run_stand_ins(huey: Huey) -> None:
    """Count a chord member that went dead down now, as Huey does when it runs the member (its
    stand-in, stored with its death, is on a queue `dequeue` does not take)."""
    queue = [pipelines.stand_in_queue(huey)]
    while (lease := _claim(huey, queue)) is not None:
        _run(huey, lease)


def _run(huey: Huey, lease: Lease) -> Any:
    """Run a claimed task through scoter's attempt and policy; its Outcome."""
    from scoter.consumer import attempt
    from scoter.consumer.policy import Policy

    app = huey.app
    ctx = attempt.new_context(app, lease, DEQUEUE_LEASE_S)
    outcome = attempt.execute(app, ctx)
    Policy(app, "huey-dequeue").apply(ctx, outcome)
    return outcome


def _execute_here(huey: Huey, task: Task) -> Any:
    for hook in list(huey._pre_execute.values()):
        hook(task)
    value, error = None, None
    try:
        value = task.execute()
    except Exception as exc:
        error = exc
    for hook in list(huey._post_execute.values()):
        hook(task, value, error)
    if error is not None:
        raise error
    return value


# -- revocation, locks and rate limits ---------------------------------------------------------


def require(owner: object, attribute: str, feature: str) -> None:
    """Raise ConfigurationError when scoter has no `attribute` (its `feature`) yet."""
    if not hasattr(owner, attribute):
        raise ConfigurationError(
            f"{attribute} needs scoter's {feature}, which this scoter version does not have"
        )


def feature(owner: object, attribute: str, name: str) -> Any:
    """`owner.attribute`, a method of scoter's `name` feature (ConfigurationError without)."""
    require(owner, attribute, name)
    return getattr(owner, attribute)


def scoter_task(target: Any) -> Any:
    """The scoter task (or its name) a Huey TaskWrapper, Task class or name stands for."""
    if isinstance(target, TaskWrapper):
        return target.scoter_task
    wrapper = getattr(target, "wrapper", None)
    if isinstance(wrapper, TaskWrapper):
        return wrapper.scoter_task
    return target


def timestamp(value: Any, utc: bool) -> float | None:
    return to_timestamp(value, utc) if isinstance(value, dt.datetime) else value


def _warn_once(key: str, message: str) -> None:
    if key not in _warned:
        _warned.add(key)
        log.warning("%s: %s", key, message)


def _scoter_exception(name: str) -> type[BaseException]:
    found = getattr(scoter_exceptions, name, None)
    return found if isinstance(found, type) else _NeverRaised


class _NeverRaised(Exception):
    """Stands for a scoter exception this scoter version does not have."""


class TaskLock:
    """Huey's `lock_task`: a decorator and a context manager on scoter's locks."""

    def __init__(self, huey: Huey, name: str, ttl: float | None = None) -> None:
        self._huey, self._name, self._ttl = huey, name, ttl
        self._held: Any = None
        huey._locks.add(name)

    def is_locked(self) -> bool:
        return self._huey.is_locked(self._name)

    locked = is_locked

    def __call__(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)
        def inner(*args: Any, **kwargs: Any) -> Any:
            with TaskLock(self._huey, self._name, self._ttl):
                return fn(*args, **kwargs)

        return inner

    def __enter__(self) -> TaskLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        held, self._held = self._held, None
        if held is not None:
            held.__exit__(*exc)

    def acquire(self) -> bool:
        app = self._huey.app
        lock = feature(app, "lock_task", "locks")(self._name, ttl=self._ttl)
        try:
            lock.__enter__()
        except _scoter_exception("TaskLockedException") as exc:
            raise TaskLockedException(f"unable to acquire lock {self._name}") from exc
        self._held = lock
        return True

    def clear(self) -> bool:
        return bool(self._huey.flush_locks(self._name))

    release = clear


class RateLimit:
    """Huey's `rate_limit`: a decorator and a context manager on scoter's rate limits."""

    def __init__(self, huey: Huey, name: str, limit: int, per: float, retry: bool = True) -> None:
        self._app: Scoter = huey.app
        self._name, self._limit, self._per, self._retry = name, limit, per, retry

    def __call__(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)
        def inner(*args: Any, **kwargs: Any) -> Any:
            with self:
                return fn(*args, **kwargs)

        return inner

    def acquire(self) -> None:
        """Count one use; raises RateLimitExceeded (with `delay` and `retry`) at the limit."""
        self.__enter__()

    def reset(self) -> None:
        """Forget the uses counted so far (in every process): the window starts empty."""
        self._limiter().reset()

    def _limiter(self) -> Any:
        return feature(self._app, "rate_limit", "rate limits")(self._name, self._limit, self._per)

    def __enter__(self) -> None:
        limiter = self._limiter()
        try:
            limiter.__enter__()
        except _scoter_exception("RateLimitExceeded") as exc:
            delay = float(getattr(exc, "delay", self._per))
            raise RateLimitExceeded(self._name, delay, self._retry) from exc

    def __exit__(self, *exc: object) -> None:
        return None
