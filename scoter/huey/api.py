"""Huey's `Huey` classes on scoter's engine: `from scoter.huey import RedisHuey` keeps a Huey
app's code and runs it with scoter's guarantees (docs/from-huey.md).

A `Huey` holds a scoter app (`huey.app`, the `scoter_app` the CLI and the process executor
load) on the storage its class and options name; every `@huey.task()` registers a scoter task
(named `module.function`) that runs the function the Huey way: `task=` for `context=True`,
pre/post-execute hooks, `RetryTask`, `CancelExecution`, Huey's signals.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Iterable
from traceback import format_exception
from typing import TYPE_CHECKING, Any, TypeVar

from scoter.app import Scoter
from scoter.huey import bridge, driving
from scoter.huey import signals as S
from scoter.huey.api_data import DataCalls
from scoter.huey.exceptions import ConfigurationError
from scoter.huey.records import unread_failure
from scoter.huey.results import ChordResult, Result, ResultGroup
from scoter.huey.schedules import crontab
from scoter.huey.serializer import Serializer, SignedSerializer
from scoter.huey.storage import (
    BaseStorage,
    BlackHoleStorage,
    FileStorage,
    MemoryStorage,
    PostgresStorage,
    PriorityRedisExpireStorage,
    PriorityRedisStorage,
    RedisExpireStorage,
    RedisStorage,
    SqliteStorage,
)
from scoter.huey.tasks import PeriodicTask, Task, TaskWrapper, chord, group
from scoter.huey.utils import from_timestamp
from scoter.states import State
from scoter.task import NAME

if TYPE_CHECKING:
    from scoter.huey.consumer import Consumer
    from scoter.storage.base import Lease, Storage, TaskInfo
    from scoter.task import Task as ScoterTask

log = logging.getLogger("huey")

F = TypeVar("F", bound=Callable[..., Any])
DEFAULT_RESULT_TTL = 86400.0
"""Seconds a result nobody reads is kept (Huey keeps it until read): `result_ttl=` changes it."""
SCOTER_TASK_OPTIONS = (
    "queue", "max_crashes", "max_interruptions", "retry_jitter", "retry_max_delay", "unique",
    "concurrency", "rate_limit",
)  # fmt: skip
"""Options of scoter's `@app.task` a Huey task may give too."""
LISTING_LIMIT = 1_000_000


class Huey(DataCalls):
    """A Huey app on scoter: `Huey(name, results=True, store_none=False, utc=True,
    immediate=False, serializer=None, compression=False, use_zlib=False,
    immediate_use_memory=True, storage_class=None, **storage_kwargs)`.

    scoter options may be given too: `result_ttl` (seconds a result nobody reads is kept;
    default a day), `secret_keys` (signing) and `url` (any scoter storage URL, which wins
    over the storage options).
    """

    storage_class: type[BaseStorage] | None = None

    def __init__(
        self,
        name: str = "huey",
        results: bool = True,
        store_none: bool = False,
        utc: bool = True,
        immediate: bool = False,
        serializer: Any = None,
        compression: bool = False,
        use_zlib: bool = False,
        immediate_use_memory: bool = True,
        storage_class: type[BaseStorage] | None = None,
        store_intermediate_errors: bool = True,
        **storage_kwargs: Any,
    ) -> None:
        self.name = name
        self.results = results
        self.store_none = store_none
        self.store_intermediate_errors = store_intermediate_errors
        self.utc = utc
        self.immediate_use_memory = immediate_use_memory
        self.serializer = serializer or Serializer(compression, use_zlib=use_zlib)
        if storage_class is not None:
            self.storage_class = storage_class
        self.storage_kwargs = storage_kwargs
        scoter_options = _scoter_options(storage_kwargs, self.serializer, results)
        self.url = scoter_options.pop("url", None) or self._storage_url()
        self.app = Scoter(
            name, "memory://" if immediate and immediate_use_memory else self.url,
            immediate=immediate, default_queue=name if NAME.fullmatch(name) else "default",
            serializer=self.serializer, **scoter_options,
        )  # fmt: skip
        self._normal_storage: Storage | None = None
        self.wrappers: dict[str, TaskWrapper] = {}
        """The Huey tasks by their scoter name."""
        self._pre_execute: dict[str, Callable[..., Any]] = {}
        self._post_execute: dict[str, Callable[..., Any]] = {}
        self._startup: dict[str, Callable[..., Any]] = {}
        self._shutdown: dict[str, Callable[..., Any]] = {}
        self._signal = S.Signal()
        self._locks: set[str] = set()
        self._listening = False
        self._errors_read: set[tuple[str, int]] = set()
        """The failures a Result of this app read (`result_count()` leaves them out)."""
        self._dequeued: dict[str, Lease] = {}
        """The leases of the tasks `dequeue()` gave and `execute()` has not run yet."""
        bridge.connect(self)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name} on {self.app!r}>"

    def __bool__(self) -> bool:
        return True

    @property
    def scoter_app(self) -> Scoter:
        """The scoter app this Huey runs on (what `scoter huey-consumer` consumes)."""
        return self.app

    def _storage_url(self) -> str:
        storage_class = self.storage_class
        if storage_class is None:
            log.warning("storage_class not specified when initializing huey, "
                        "will default to RedisStorage.")  # fmt: skip
            storage_class = RedisStorage
        return storage_class.url_for(self.name, **self.storage_kwargs)

    @property
    def storage(self) -> Storage:
        """scoter's storage (its methods are scoter's, not Huey's)."""
        return self.app.storage

    def get_storage(self, **kwargs: Any) -> Storage:
        return self.app.storage

    def create_storage(self) -> Storage:
        return self.app.storage

    # -- immediate mode --------------------------------------------------------------------

    @property
    def immediate(self) -> bool:
        return self.app.immediate

    @immediate.setter
    def immediate(self, value: bool) -> None:
        """Switching on runs tasks in the caller's thread, on fresh memory storage when
        `immediate_use_memory` (as Huey does); switching off goes back to the storage."""
        if value == self.app.immediate:
            return
        self.app.immediate = value
        if not self.immediate_use_memory:
            return
        if value:
            self._normal_storage, self.app._storage = self.app._storage, None
            self.app._url = "memory://"
        else:
            self.app._storage, self._normal_storage = self._normal_storage, None
            self.app._url = self.url

    # -- registering tasks -----------------------------------------------------------------

    def task(
        self,
        retries: int = 0,
        retry_delay: float = 0,
        retry_backoff: float = 0,
        priority: int | None = None,
        context: bool = False,
        name: str | None = None,
        expires: Any = None,
        timeout: float | None = None,
        **kwargs: Any,
    ) -> Callable[[Callable[..., Any]], TaskWrapper]:
        """`@huey.task(retries=2, retry_delay=60)`: register a task; calling it enqueues."""

        def decorator(func: Callable[..., Any]) -> TaskWrapper:
            fn = func.func if isinstance(func, TaskWrapper) else func
            return TaskWrapper(
                self, fn, context=context, name=name, default_retries=retries,
                default_retry_delay=retry_delay, default_retry_backoff=retry_backoff,
                default_priority=priority, default_expires=expires, default_timeout=timeout,
                **kwargs,
            )  # fmt: skip

        return decorator

    def periodic_task(
        self,
        validate_datetime: Callable[[dt.datetime], bool],
        retries: int = 0,
        retry_delay: float = 0,
        retry_backoff: float = 0,
        priority: int | None = None,
        context: bool = False,
        name: str | None = None,
        expires: Any = None,
        timeout: float | None = None,
        **kwargs: Any,
    ) -> Callable[[Callable[..., Any]], TaskWrapper]:
        """`@huey.periodic_task(crontab(minute='0', hour='3'))`: run on a schedule, once per
        slot however many consumers run. `validate_datetime` is a `crontab(...)` or any
        function of a datetime (checked minute by minute)."""

        def decorator(func: Callable[..., Any]) -> TaskWrapper:
            fn = func.func if isinstance(func, TaskWrapper) else func
            return TaskWrapper(
                self, fn, context=context, name=name, task_base=PeriodicTask,
                default_retries=retries, default_retry_delay=retry_delay,
                default_retry_backoff=retry_backoff, default_priority=priority,
                default_expires=expires, default_timeout=timeout,
                validate_datetime=staticmethod(validate_datetime), **kwargs,
            )  # fmt: skip

        return decorator

    def context_task(
        self, obj: Any, as_argument: bool = False, **kwargs: Any
    ) -> Callable[[Callable[..., Any]], TaskWrapper]:
        """A task run inside `with obj:` (its value passed first with `as_argument`)."""

        def task_decorator(fn: Callable[..., Any]) -> TaskWrapper:
            def inner(*a: Any, **k: Any) -> Any:
                with obj as ctx:
                    return fn(ctx, *a, **k) if as_argument else fn(*a, **k)

            inner.__name__, inner.__module__ = fn.__name__, fn.__module__
            inner.__qualname__, inner.__doc__ = fn.__qualname__, fn.__doc__
            return self.task(**kwargs)(inner)

        return task_decorator

    def _register(self, wrapper: TaskWrapper) -> ScoterTask[Any, Any]:
        if wrapper.scoter_name in self.wrappers:
            raise ValueError(
                "Attempting to register a task with the same identifier as existing task. "
                f'Specify a different name= to register this task. "{wrapper.scoter_name}"'
            )
        return bridge.register(self, wrapper)

    def _unregister(self, wrapper: TaskWrapper) -> bool:
        self.app.periodic.pop(wrapper.scoter_name, None)
        return self.wrappers.pop(wrapper.scoter_name, None) is not None

    # -- hooks and signals -----------------------------------------------------------------

    def pre_execute(self, name: str | None = None) -> Callable[[F], F]:
        """`@huey.pre_execute()`: `fn(task)` before each task; raise CancelExecution to cancel."""
        return _hook(self._pre_execute, name)

    def post_execute(self, name: str | None = None) -> Callable[[F], F]:
        """`@huey.post_execute()`: `fn(task, task_value, exc)` after each task."""
        return _hook(self._post_execute, name)

    def on_startup(self, name: str | None = None) -> Callable[[F], F]:
        """`@huey.on_startup()`: `fn()` in each worker before its first task."""
        return _hook(self._startup, name)

    def on_shutdown(self, name: str | None = None) -> Callable[[F], F]:
        """`@huey.on_shutdown()`: `fn()` in each worker thread after its last task."""
        return _hook(self._shutdown, name)

    def unregister_pre_execute(self, name: str | Callable[..., Any]) -> bool:
        return _unhook(self._pre_execute, name)

    def unregister_post_execute(self, name: str | Callable[..., Any]) -> bool:
        return _unhook(self._post_execute, name)

    def unregister_on_startup(self, name: str | Callable[..., Any]) -> bool:
        return _unhook(self._startup, name)

    def unregister_on_shutdown(self, name: str | Callable[..., Any]) -> bool:
        return _unhook(self._shutdown, name)

    def signal(self, *signals: str) -> Callable[[F], F]:
        """`@huey.signal(SIGNAL_ERROR)`: `fn(signal, task, *extra)`; no names: every signal."""

        def decorator(fn: F) -> F:
            self._signal.connect(fn, *signals)
            bridge.listen(self)
            return fn

        return decorator

    def disconnect_signal(self, receiver: Callable[..., Any], *signals: str) -> None:
        self._signal.disconnect(receiver, *signals)

    def _emit(self, signal: str, task: Task, *args: Any) -> None:
        self._signal.send(signal, task, *args)

    # -- enqueueing ------------------------------------------------------------------------

    def enqueue(self, task: Task | group | chord) -> Result | ResultGroup | ChordResult | None:
        """Enqueue a Task (`my_task.s(...)`), a pipeline (`.then()`), a group or a chord."""
        return bridge.enqueue(self, task)

    def _enqueue_many(self, tasks: list[Task]) -> ResultGroup | None:
        return bridge.enqueue_many(self, tasks)

    def _result_handle(self, task: Task) -> Result:
        return Result(self, task)

    def result(
        self,
        id: str,
        blocking: bool = False,
        timeout: float | None = None,
        backoff: float = 1.15,
        max_delay: float = 1.0,
        revoke_on_timeout: bool = False,
        preserve: bool = False,
    ) -> Any:
        """The value of task `id` (see `Result.get`)."""
        return Result(self, Task(id=id)).get(
            blocking, timeout, backoff, max_delay, revoke_on_timeout, preserve
        )

    def build_error_result(self, task: Task, exception: BaseException) -> dict[str, Any]:
        """The metadata of a failure (`TaskException.metadata`), built when a Result reads
        it: `task` as it was when it failed, `exception` standing for the one it raised (its
        repr is the task's). Override it to add fields, as in Huey."""
        traceback = getattr(exception, "traceback", None)
        if traceback is None:
            traceback = "".join(format_exception(type(exception), exception,
                                                 exception.__traceback__))  # fmt: skip
        return {"error": repr(exception), "retries": task.retries, "traceback": traceback,
                "task_id": task.id}  # fmt: skip

    # -- driving tasks by hand (users' tests) ----------------------------------------------

    def dequeue(self) -> Task | None:
        """Claim the next queued task for `execute()`; None when the queue is empty."""
        return driving.dequeue(self)

    def execute(self, task: Task, timestamp: Any = None) -> Any:
        """Run a task here and now; returns its value (None when it failed: the Result says)."""
        return driving.execute(self, task, timestamp)

    def ready_to_run(self, task: Task, timestamp: dt.datetime | None = None) -> bool:
        now = timestamp or (from_timestamp(dt.datetime.now().timestamp(), self.utc))
        return task.eta is None or now is None or task.eta <= now

    # -- revocation, locks, rate limits (on scoter's) --------------------------------------

    def revoke_all(
        self, task_class: Any, revoke_until: Any = None, revoke_once: bool = False
    ) -> None:
        revoke_all = bridge.feature(self.app, "revoke_all", "revocation")
        revoke_all(bridge.scoter_task(task_class), revoke_until=revoke_until,
                   revoke_once=revoke_once)  # fmt: skip

    def restore_all(self, task_class: Any) -> bool:
        restore_all = bridge.feature(self.app, "restore_all", "revocation")
        return bool(restore_all(bridge.scoter_task(task_class)))

    def revoke(self, task: Task, revoke_until: Any = None, revoke_once: bool = False) -> None:
        self.revoke_by_id(task.id, revoke_until, revoke_once)

    def restore(self, task: Task) -> bool:
        return self.restore_by_id(task.id)

    def revoke_by_id(self, id: str, revoke_until: Any = None, revoke_once: bool = False) -> None:
        """Revoke one task as Huey does: it stays queued, and ends dead `revoked` instead of
        running when a consumer takes it — until `restore_by_id`, until `revoke_until`, or
        that once (`revoke_once`); a running task finishes."""
        revoke = bridge.feature(self.app, "revoke_when_claimed", "revocation")
        revoke(id, bridge.timestamp(revoke_until, self.utc), revoke_once)

    def restore_by_id(self, id: str) -> bool:
        return bool(bridge.feature(self.app, "restore_by_id", "revocation")(id))

    def is_revoked(self, task: Any, timestamp: Any = None, peek: bool = True) -> bool:
        """Whether `task` would be revoked if it ran now (or at `timestamp`): a Task or
        Result by its id or its task's revocation, an id by its own, a task by its name's.
        A task that already ended revoked is not (its one-time revocation was spent)."""
        is_revoked = bridge.feature(self.app, "is_revoked", "revocation")
        at = bridge.timestamp(timestamp, self.utc)
        if isinstance(task, (Task, Result, str)):
            one = task.task if isinstance(task, Result) else task
            wrapper = None if isinstance(one, str) else type(one).wrapper
            if wrapper is not None and is_revoked(wrapper.scoter_task, at):
                return True
            return driving.revoked_by_id(self, one if isinstance(one, str) else one.id, at)
        return bool(is_revoked(bridge.scoter_task(task), at))

    def lock_task(self, lock_name: str, ttl: float | None = None) -> bridge.TaskLock:
        """A lock as a decorator or context manager; raises TaskLockedException when held.
        Held under the running task's lease: a crashed holder's lock frees itself."""
        return bridge.TaskLock(self, lock_name, ttl)

    def is_locked(self, lock_name: str) -> bool:
        return bool(bridge.feature(self.app, "is_locked", "locks")(lock_name))

    def flush_locks(self, *names: str) -> set[str]:
        """Free the named locks (and those this app's lock_task made); returns the freed.
        A key-value entry named as Huey stores a lock (`{huey.name}.lock.{name}`, made by
        hand with `put_if_empty`) is deleted too, as Huey's flush_locks deletes it."""
        flush_locks = bridge.feature(self.app, "flush_locks", "locks")
        wanted = {*self._locks, *(n.strip() for n in names)}
        flushed = flush_locks(*sorted(wanted))
        freed = set(flushed) if isinstance(flushed, Iterable) else set()
        storage = self.app.storage
        return freed | {n for n in wanted if storage.delete_data(f"{self.name}.lock.{n}")}

    def rate_limit(self, name: str, limit: int, per: float, retry: bool = True) -> bridge.RateLimit:
        return bridge.RateLimit(self, name, limit, per, retry)

    # -- inspection ------------------------------------------------------------------------

    def pending(self, limit: int | None = None) -> list[Task]:
        return [bridge.task_of_info(self, i) for i in self._listed(State.QUEUED, limit)]

    def pending_count(self) -> int:
        return self._count(State.QUEUED)

    def scheduled(self, limit: int | None = None) -> list[Task]:
        return [bridge.task_of_info(self, i) for i in self._listed(State.SCHEDULED, limit)]

    def scheduled_count(self) -> int:
        return self._count(State.SCHEDULED)

    def all_results(self) -> dict[str, Any]:
        """{task id: value} of the finished tasks whose result was not read yet."""
        return {
            info.id: None if info.result is None else self.app.decode_result(info.result, info.id)
            for info in self._listed(State.DONE, None)
        }

    def result_count(self) -> int:
        """Unread results: finished tasks', and failures no Result of this app read yet."""
        if not self.results:
            return 0
        states = [State.DEAD, *((State.SCHEDULED, State.QUEUED) * self.store_intermediate_errors)]
        failures = [i for s in states for i in self._listed(s, None) if unread_failure(self, i)]
        return self._count(State.DONE) + len(failures)

    def __len__(self) -> int:
        return self.pending_count()

    def flush(self) -> None:
        """Delete every task of the storage, whatever its state, every result and every
        key-value entry (`put`), as Huey's flush empties its whole storage."""
        for state in State:
            self.app.storage.purge(state)
        self.app.storage.flush_data()

    def _listed(self, state: State, limit: int | None) -> list[TaskInfo]:
        queues = {self.app.default_queue} | {w.scoter_task.queue for w in self.wrappers.values()}
        found = [
            info
            for queue in sorted(queues)
            for info in self.app.storage.list_tasks(state, queue, limit or LISTING_LIMIT)
        ]
        found.sort(key=lambda info: info.created_at)
        return found[:limit] if limit else found

    def _count(self, state: State) -> int:
        return sum(n for (_, s), n in self.app.storage.counts().items() if s is state)

    # -- the consumer ----------------------------------------------------------------------

    def create_consumer(self, **options: Any) -> Consumer:
        from scoter.huey.consumer import Consumer

        return Consumer(self, **options)


def _hook(registry: dict[str, Callable[..., Any]], name: str | None) -> Callable[[F], F]:
    def decorator(fn: F) -> F:
        registry[name or fn.__name__] = fn
        return fn

    return decorator


def _unhook(registry: dict[str, Callable[..., Any]], name: str | Callable[..., Any]) -> bool:
    key = name if isinstance(name, str) else name.__name__
    return registry.pop(key, None) is not None


def _scoter_options(options: dict[str, Any], serializer: Any, results: bool) -> dict[str, Any]:
    """Take scoter's own options out of the storage options."""
    scoter: dict[str, Any] = {k: options.pop(k) for k in ("url", "secret_keys") if k in options}
    ttl = options.pop("result_ttl", options.get("expire_time", DEFAULT_RESULT_TTL))
    scoter["result_ttl"] = ttl if results else 0
    if isinstance(serializer, SignedSerializer) and "secret_keys" not in scoter:
        scoter["secret_keys"] = [serializer.secret]
    if not hasattr(serializer, "dumps") or not hasattr(serializer, "loads"):
        raise ConfigurationError(
            f"serializer {serializer!r} needs dumps() and loads() (or serialize() and "
            "deserialize(), as scoter.huey.serializer.Serializer has)"
        )
    return scoter


class BlackHoleHuey(Huey):
    storage_class = BlackHoleStorage


class MemoryHuey(Huey):
    storage_class = MemoryStorage


class SqliteHuey(Huey):
    storage_class = SqliteStorage


CySqliteHuey = SqliteHuey


class PostgresHuey(Huey):
    storage_class = PostgresStorage


class RedisHuey(Huey):
    storage_class = RedisStorage


class RedisExpireHuey(RedisHuey):
    storage_class = RedisExpireStorage


class PriorityRedisHuey(RedisHuey):
    storage_class = PriorityRedisStorage


class PriorityRedisExpireHuey(RedisHuey):
    storage_class = PriorityRedisExpireStorage


class FileHuey(Huey):
    storage_class = FileStorage


__all__ = [
    "BlackHoleHuey", "ChordResult", "CySqliteHuey", "FileHuey", "Huey", "MemoryHuey",
    "PeriodicTask", "PostgresHuey", "PriorityRedisExpireHuey", "PriorityRedisHuey",
    "RedisExpireHuey", "RedisHuey", "Result", "ResultGroup", "SqliteHuey", "Task",
    "TaskWrapper", "chord", "crontab", "group",
]  # fmt: skip
