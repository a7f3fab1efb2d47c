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
from typing import TYPE_CHECKING, Any, NoReturn

from scoter import exceptions as scoter_exceptions
from scoter import signals as scoter_signals
from scoter.envelope import Decoded
from scoter.exceptions import Cancel, Interrupt, TimedOut
from scoter.huey import pipelines, records
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
from scoter.huey.tasks import PeriodicTask, Task, TaskWrapper, chord, group
from scoter.huey.utils import to_timestamp
from scoter.task import Message

if TYPE_CHECKING:
    from scoter.app import Scoter
    from scoter.context import TaskContext
    from scoter.huey.api import Huey
    from scoter.storage.base import TaskInfo
    from scoter.task import Task as ScoterTask

log = logging.getLogger("huey")

OWN_SIGNALS = (CancelExecution, TaskLockedException, RateLimitExceeded, TaskTimeout)
"""Exceptions whose Huey signal the runner sends itself (not SIGNAL_ERROR)."""
FORWARDED = frozenset(
    (S.SIGNAL_ENQUEUED, S.SIGNAL_EXECUTING, S.SIGNAL_COMPLETE, S.SIGNAL_ERROR,
     S.SIGNAL_RETRYING, S.SIGNAL_INTERRUPTED, S.SIGNAL_REVOKED, S.SIGNAL_EXPIRED)
)  # fmt: skip
"""scoter's signals that Huey's receivers hear, under the same names."""

_attempts: weakref.WeakKeyDictionary[TaskContext, Task] = weakref.WeakKeyDictionary()
_handed_back: set[str] = set()
"""Tasks whose runner handed them back (RetryTask, a rate limit) and sent Huey's signals."""


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
    call = Decoded(tuple(args), kwargs, {}, ctx.expires, None, None, ctx.budget)
    lease = ctx.lease
    task = records.huey_task(huey, ctx.task_name, ctx.task_id, call, lease.errors,
                             priority=lease.priority)  # fmt: skip
    task.scoter_context = ctx
    if task.timeout:
        task._deadline = time.monotonic() + task.timeout
    _attempts[ctx] = task
    return task


def run_task(huey: Huey, task: Task) -> Any:
    """Call the task's function; Huey's exceptions become scoter's outcomes. A failure Huey
    surfaces carries its repr to the stored error (`records.note_error`)."""
    try:
        value = task.execute()
    except RetryTask as exc:
        delay = _retry_delay(exc, task)
        _handing_back(huey, task, delay)
        raise Interrupt(f"RetryTask: {exc}", delay=delay) from exc
    except CancelExecution as exc:
        records.note_error(exc)
        huey._emit(S.SIGNAL_CANCELED, task)
        _cancelled(exc, task)
    except TaskLockedException:
        huey._emit(S.SIGNAL_LOCKED, task)
        raise
    except RateLimitExceeded as exc:
        huey._emit(S.SIGNAL_RATE_LIMITED, task)
        if exc.retry or task.retries:  # Huey retries it once the limit frees
            delay = float(task.retry_delay or exc.delay)
            _handing_back(huey, task, delay)
            raise Interrupt(str(exc), delay=delay) from exc
        records.note_error(exc, final=True)
        raise
    except TaskTimeout as exc:
        records.note_error(exc)
        huey._emit(S.SIGNAL_TIMEOUT, task)
        raise
    except Exception as exc:
        records.note_error(exc)
        raise
    task._returned = value
    if isinstance(task, PeriodicTask):
        return None  # Huey stores no result of a periodic task
    return value


def _cancelled(exc: CancelExecution, task: Task) -> NoReturn:
    """CancelExecution as Huey treats it: retry=False (or None without retries left) ends the
    task, dead `canceled`; retry=True without retries left hands it back (bounded by
    max_interruptions); otherwise it is an error like any."""
    noted = f"{records.ERROR_NOTE}{exc!r}"
    if exc.retry is False or (exc.retry is None and not task.retries):
        raise Cancel(f"CancelExecution: {exc}\n{noted}" if str(exc) else noted) from exc
    if exc.retry and not task.retries:
        raise Interrupt(noted) from exc
    raise exc


def _handing_back(huey: Huey, task: Task, delay: float) -> None:
    """A RetryTask or a rate limit hands the task back: Huey's signals for its retry (the
    forwarded SIGNAL_INTERRUPTED of this hand-back is left out)."""
    _handed_back.add(task.id)
    huey._emit(S.SIGNAL_RETRYING, task)
    huey._emit(S.SIGNAL_SCHEDULED if delay > 0 else S.SIGNAL_ENQUEUED, task)


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
        _forward_error(huey, task, extra[0] if extra else None)
        return
    if name == S.SIGNAL_INTERRUPTED and ref.id in _handed_back:
        _handed_back.discard(ref.id)
        return
    huey._emit(name, task)
    if name == S.SIGNAL_RETRYING:
        delayed = len(extra) > 1 and extra[1]
        huey._emit(S.SIGNAL_SCHEDULED if delayed else S.SIGNAL_ENQUEUED, task)


def _forward_error(huey: Huey, task: Task, exc: BaseException | None) -> None:
    if isinstance(exc, OWN_SIGNALS):
        return
    if isinstance(exc, TimedOut):
        huey._emit(S.SIGNAL_TIMEOUT, task)
    else:
        huey._emit(S.SIGNAL_ERROR, task, exc)


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
    return records.task_of_record(huey, info)


# -- enqueueing --------------------------------------------------------------------------------


def message_of(huey: Huey, task: Task) -> Message:
    """The scoter message of a Huey task object."""
    cls = type(task)
    if cls.wrapper is None:
        raise ConfigurationError(f"{task!r} is not a task of a Huey app: make it with task.s()")
    fields: dict[str, Any] = {"id": task.id, "priority": task.priority,
                              "eta": to_timestamp(task.eta, huey.utc),
                              "budget": records.budget_of(task)}  # fmt: skip
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
        if self._limit < 1:  # Huey's limit=0: nothing may pass
            raise RateLimitExceeded(self._name, self._per, self._retry)
        limiter = self._limiter()
        try:
            limiter.__enter__()
        except _scoter_exception("RateLimitExceeded") as exc:
            delay = float(getattr(exc, "delay", self._per))
            raise RateLimitExceeded(self._name, delay, self._retry) from exc

    def __exit__(self, *exc: object) -> None:
        return None
