"""Huey's task objects: `Task` (one call), `TaskWrapper` (what `@huey.task()` returns),
`group` and `chord`. A wrapper registers a scoter task that runs the function the Huey way.
"""

from __future__ import annotations

import datetime as dt
import inspect
import logging
import time
import uuid
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from scoter.huey.exceptions import ConfigurationError, TaskTimeout
from scoter.huey.utils import normalize_expire_time, normalize_time

if TYPE_CHECKING:
    from scoter.context import TaskContext
    from scoter.huey.api import Huey
    from scoter.huey.results import ChordResult, Result, ResultGroup
    from scoter.task import Task as ScoterTask

log = logging.getLogger("huey")

CALL_OPTIONS = ("id", "retries", "retry_delay", "retry_backoff", "priority", "expires", "timeout")
"""What `TaskWrapper.s()` takes out of the keyword arguments, as Huey does."""


class Task:
    """One call of a task: its id, arguments and options; `then()`/`error()` chain others."""

    default_expires: Any = None
    default_priority: int | None = None
    default_retries = 0
    default_retry_delay: float = 0
    default_retry_backoff: float = 0
    default_timeout: float | None = None
    context = False
    wrapper: TaskWrapper | None = None

    def __init__(
        self,
        args: tuple[Any, ...] | None = None,
        kwargs: dict[str, Any] | None = None,
        id: str | None = None,
        eta: dt.datetime | None = None,
        retries: int | None = None,
        retry_delay: float | None = None,
        priority: int | None = None,
        expires: Any = None,
        on_complete: Task | None = None,
        on_error: Task | None = None,
        timeout: float | None = None,
        retry_backoff: float | None = None,
        **_: Any,
    ) -> None:
        self.name = type(self).__name__
        self.args = () if args is None else tuple(args)
        self.kwargs = {} if kwargs is None else kwargs
        self.id = id or str(uuid.uuid4())
        self.revoke_id = f"r:{self.id}"
        self.eta = eta
        self.retries = self.default_retries if retries is None else retries
        self.retry_delay = self.default_retry_delay if retry_delay is None else retry_delay
        self.retry_backoff = self.default_retry_backoff if retry_backoff is None else retry_backoff
        self.priority = self.default_priority if priority is None else priority
        self.expires = self.default_expires if expires is None else expires
        self.expires_resolved: dt.datetime | None = None
        """When it expires, once stored (`huey.dequeue()`, `pending()`, `scheduled()`)."""
        self.timeout = self.default_timeout if timeout is None else timeout
        self._deadline: float | None = None
        """When its time limit runs out (time.monotonic()), while it runs."""
        self.on_complete = on_complete
        self.on_error = on_error
        self._returned: Any = None
        """What its function returned, once run (`huey.execute()` returns it)."""
        self.scoter_context: TaskContext | None = None
        """In a consumer: the attempt's scoter context (checkpoints, stop requests)."""

    @property
    def data(self) -> tuple[tuple[Any, ...], dict[str, Any]]:
        return self.args, self.kwargs

    def __repr__(self) -> str:
        rep = f"{type(self).__module__}.{self.name}: {self.id}"
        if self.eta:
            rep += f" @{self.eta}"
        if self.priority:
            rep += f" p={self.priority}"
        if self.on_complete:
            rep += f" -> {self.on_complete}"
        return rep

    def __hash__(self) -> int:
        return hash(self.id)

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, Task)
            and self.id == other.id
            and self.eta == other.eta
            and type(self) is type(other)
        )

    def create_id(self) -> str:
        return str(uuid.uuid4())

    def extend_data(self, data: Any) -> None:
        """Add a previous step's result to the arguments, as Huey's pipelines do."""
        if data is None or data == ():
            return
        if isinstance(data, tuple):
            self.args += data
        elif isinstance(data, dict):
            for key, value in data.items():
                self.kwargs.setdefault(key, value)
        else:
            self.args = (*self.args, data)

    def then(self, task: Task | TaskWrapper, *args: Any, **kwargs: Any) -> Task:
        if self.on_complete:
            self.on_complete.then(task, *args, **kwargs)
        else:
            self.on_complete = _signature(task, args, kwargs)
        return self

    def error(self, task: Task | TaskWrapper, *args: Any, **kwargs: Any) -> Task:
        if self.on_error:
            self.on_error.error(task, *args, **kwargs)
        else:
            self.on_error = _signature(task, args, kwargs)
        return self

    def resolve_expires(self, utc: bool = True) -> dt.datetime | None:
        if self.expires:
            self.expires_resolved = normalize_expire_time(self.expires, utc)
        return self.expires_resolved

    @property
    def time_remaining(self) -> float:
        """Seconds left before its time limit (infinity without one)."""
        if self._deadline:
            return max(0.0, self._deadline - time.monotonic())
        return float("inf")

    @property
    def is_timed_out(self) -> bool:
        """Whether it ran past its time limit (scoter's, or its own `timeout`)."""
        ctx = self.scoter_context
        if ctx is not None and ctx.timed_out:
            return True
        return bool(self._deadline) and time.monotonic() >= (self._deadline or 0.0)

    def check_timeout(self) -> None:
        """Raise TaskTimeout once the attempt ran past its time limit (cooperative)."""
        if self.is_timed_out:
            raise TaskTimeout(f"timeout {self.timeout}s")

    def execute(self) -> Any:
        raise NotImplementedError


class PeriodicTask(Task):
    """A task run on a schedule (`@huey.periodic_task`)."""


def _signature(task: Task | TaskWrapper, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Task:
    if not isinstance(task, Task):
        return task.s(*args, **kwargs)
    if args:
        task.extend_data(args)
    if kwargs:
        task.extend_data(kwargs)
    return task


class TaskWrapper:
    """What `@huey.task()` returns: calling it enqueues a run and returns a Result."""

    task_base: type[Task] = Task

    def __init__(
        self,
        huey: Huey,
        func: Callable[..., Any],
        context: bool = False,
        name: str | None = None,
        task_base: type[Task] | None = None,
        **settings: Any,
    ) -> None:
        if inspect.iscoroutinefunction(func):
            raise ConfigurationError(
                "huey tasks cannot be async functions: use scoter's own @app.task with "
                "`scoter worker -k asyncio`, or wrap the coroutine with asyncio.run()"
            )
        self.__doc__ = getattr(func, "__doc__", None)
        self.huey = huey
        self.func = func
        self.context = context
        self.name = name or func.__name__
        self.settings = settings
        if task_base is not None:
            self.task_base = task_base
        self.task_class = self.create_task(func, context, self.name, **settings)
        self.task_class.wrapper = self
        self.scoter_name = f"{func.__module__}.{self.name}"
        """The name scoter stores and consumers look up: the module and the task name."""
        self.scoter_task: ScoterTask[Any, Any] = huey._register(self)

    def __repr__(self) -> str:
        return f"<TaskWrapper {self.scoter_name}>"

    @property
    def retries(self) -> int:
        return self.task_class.default_retries

    @property
    def retry_delay(self) -> float:
        return self.task_class.default_retry_delay

    def create_task(
        self, func: Callable[..., Any], context: bool = False, name: str = "", **settings: Any
    ) -> type[Task]:
        def execute(task: Task) -> Any:
            args, kwargs = task.data
            if task.context:
                kwargs = dict(kwargs, task=task)
            return func(*args, **kwargs)

        attrs = {"context": context, "execute": execute, "__module__": func.__module__,
                 "__doc__": func.__doc__, **settings}  # fmt: skip
        return type(name or func.__name__, (self.task_base,), attrs)

    def unregister(self) -> bool:
        return self.huey._unregister(self)

    def s(self, *args: Any, **kwargs: Any) -> Task:
        """A Task for this call; `eta`, `delay` and the CALL_OPTIONS are taken out of kwargs."""
        eta, delay = kwargs.pop("eta", None), kwargs.pop("delay", None)
        if eta is not None or delay is not None:
            eta = normalize_time(eta, delay, self.huey.utc)
        options = {key: kwargs.pop(key, None) for key in CALL_OPTIONS}
        return self.task_class(args, kwargs, eta=eta, **options)

    def __call__(self, *args: Any, **kwargs: Any) -> Result | ResultGroup | ChordResult | None:
        return self.huey.enqueue(self.s(*args, **kwargs))

    def schedule(
        self,
        args: Any = None,
        kwargs: dict[str, Any] | None = None,
        eta: dt.datetime | None = None,
        delay: Any = None,
        priority: int | None = None,
        retries: int | None = None,
        retry_delay: float | None = None,
        retry_backoff: float | None = None,
        expires: Any = None,
        timeout: float | None = None,
        id: str | None = None,
    ) -> Result | ResultGroup | ChordResult | None:
        """Enqueue a run for `eta` or after `delay` (a number or timedelta as first argument
        is the delay, a datetime the eta)."""
        if eta is None and delay is None:
            if isinstance(args, (int, float, dt.timedelta)):
                delay, args = args, None
            elif isinstance(args, dt.datetime):
                eta, args = args, None
            else:
                raise ValueError("schedule() missing required eta= or delay=")
        if kwargs is not None and not isinstance(kwargs, dict):
            raise ValueError("schedule() kwargs argument must be a dict.")
        task = self.task_class(
            _arguments(args), kwargs or {}, id=id, eta=normalize_time(eta, delay, self.huey.utc),
            retries=retries, retry_delay=retry_delay, retry_backoff=retry_backoff,
            priority=priority, expires=expires, timeout=timeout,
        )  # fmt: skip
        return self.huey.enqueue(task)

    def map(self, it: Iterable[Any]) -> ResultGroup | None:
        """Enqueue one run per item (a tuple is the arguments, anything else the one
        argument), in one storage call."""
        tasks = [self.s(*(i if isinstance(i, tuple) else (i,))) for i in it]
        return self.huey._enqueue_many(tasks)

    def call_local(self, *args: Any, **kwargs: Any) -> Any:
        return self.func(*args, **kwargs)

    def is_revoked(self, timestamp: Any = None, peek: bool = True) -> bool:
        return self.huey.is_revoked(self, timestamp, peek)

    def revoke(self, revoke_until: Any = None, revoke_once: bool = False) -> None:
        self.huey.revoke_all(self, revoke_until, revoke_once)

    def restore(self) -> bool:
        return self.huey.restore_all(self)


def _arguments(args: Any) -> tuple[Any, ...]:
    """`schedule()`'s args: a tuple or list, or one argument (Huey stores it as it is)."""
    if args is None:
        return ()
    return tuple(args) if isinstance(args, (tuple, list)) else (args,)


class group:  # Huey's name
    """Tasks to enqueue together; `.then(callback)` makes a chord."""

    def __init__(self, tasks: Iterable[Task]) -> None:
        self.tasks = list(tasks)

    def then(self, task: Task | TaskWrapper, *args: Any, **kwargs: Any) -> chord:
        return chord(self.tasks, _signature(task, args, kwargs))

    def error(self, *args: Any, **kwargs: Any) -> group:
        for task in self.tasks:
            task.error(*args, **kwargs)
        return self


class chord:  # Huey's name
    """A group whose callback runs once with the list of the members' results."""

    def __init__(self, tasks: Iterable[Task], callback: Task | TaskWrapper) -> None:
        self.tasks = list(tasks)
        self.callback = _signature(callback, (), {})

    def then(self, task: Task | TaskWrapper, *args: Any, **kwargs: Any) -> chord:
        self.callback.then(task, *args, **kwargs)
        return self

    def error(self, task: Task | TaskWrapper, *args: Any, **kwargs: Any) -> chord:
        self.callback.error(task, *args, **kwargs)
        return self
