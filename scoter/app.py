"""The Scoter facade: register tasks, enqueue them, read results, connect signals."""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from collections.abc import Callable, Coroutine, Iterable, Sequence
from typing import TYPE_CHECKING, Any, Literal, ParamSpec, TypeVar, overload

from scoter import flows, revocation
from scoter import signals as sig
from scoter.config import absolute_url, default_url, redact, storage_from_url
from scoter.coordination import Coordinating, given_key, limit_of, unique_key
from scoter.envelope import Envelopes, check_size
from scoter.exceptions import ConfigurationError, EnqueueError
from scoter.expiry import Expiring
from scoter.flows import Chord, Group, Pipeline
from scoter.hooks import Hooks
from scoter.periodic import Periodic, Schedule, slot_id
from scoter.result import ChordResult, Result, ResultGroup
from scoter.retry import Budget, RetryPolicy
from scoter.serializers import (
    Decided,
    Serializer,
    Signer,
    get_serializer,
)
from scoter.states import REVOKED
from scoter.storage.base import NewTask, Storage
from scoter.storage.outages import through_outages, within
from scoter.task import (
    AsyncTask,
    ContextTaskDecorator,
    Message,
    Task,
    TaskDecorator,
    check_id,
    check_name,
    check_options,
    new_id,
)
from scoter.times import Moment, to_deadline

if TYPE_CHECKING:
    from psycopg import Connection

    from scoter.consumer.supervisor import Consumer
    from scoter.contrib.otel import Tracing

log = logging.getLogger("scoter")

P = ParamSpec("P")
R = TypeVar("R")
DEFAULT_QUEUE = "default"
DEFAULT_POLICY = RetryPolicy()
ENQUEUE_TIMEOUT_S = 15.0
"""How long an enqueue rides out a storage outage by default (plus one call's deadline)."""
IMMEDIATE_LEASE_S = 60.0
"""The lease of a task run in the caller's thread (`run_pending`): nothing renews it."""
DEFAULT_MAX_MESSAGE_BYTES = 1 << 20
"""The largest encoded message (its arguments and headers) an app enqueues by default: 1 MiB."""
DEFAULT_MAX_RESULT_BYTES = 1 << 20
"""The largest encoded result an app stores by default: 1 MiB."""


class Scoter(Coordinating, revocation.Revoking, Expiring, Envelopes):
    """A task queue application: `app = Scoter("myapp", "sqlite:///myapp.db")`."""

    def __init__(
        self,
        name: str = "scoter",
        url: str | Storage | None = None,
        *,
        immediate: bool = False,
        default_queue: str = DEFAULT_QUEUE,
        serializer: str | Serializer = "json",
        secret_keys: str | bytes | Sequence[str | bytes] | None = None,
        result_ttl: float | None = 86400.0,
        enqueue_timeout: float = ENQUEUE_TIMEOUT_S,
        max_message_bytes: int | None = DEFAULT_MAX_MESSAGE_BYTES,
        max_result_bytes: int | None = DEFAULT_MAX_RESULT_BYTES,
        tracing: bool = False,
    ) -> None:
        """
        :param name: the app's name; names the default SQLite file.
        :param url: a storage URL (sqlite:///x.db, memory://) or a Storage; default $SCOTER_URL,
            else sqlite:///<name>.db. Immediate mode defaults to memory://.
        :param immediate: run tasks in-process when enqueued (for tests and development), on
            memory:// unless `url` is given. See the `immediate` property.
        :param default_queue: the queue of tasks that do not name one.
        :param serializer: 'json' (default) or 'pickle' (opt-in, trusts producers), or an object.
        :param secret_keys: HMAC keys of at least 16 bytes: the first signs, all verify; tasks,
            results and checkpoints that fail verification never run or load. None: no signing.
        :param result_ttl: seconds a done task and its result are kept; None keeps them forever.
        :param enqueue_timeout: seconds an enqueue retries while the storage is unreachable
            (with the same ids: it stores each task once) before it raises EnqueueError.
        :param max_message_bytes: the largest encoded message `enqueue` accepts (1 MiB; None:
            no limit); a larger one raises TooLarge.
        :param max_result_bytes: the largest encoded result stored (1 MiB; None: no limit); an
            attempt returning a larger one fails with TooLarge, as any error of the task.
        :param tracing: OpenTelemetry spans at enqueue and for each attempt, one trace
            through the message headers (the `otel` extra; scoter.contrib.otel).
        """
        self.name = name
        self._immediate = immediate
        self.default_queue = check_name("queue", default_queue)
        self.serializer = get_serializer(serializer)
        self.signer = None if secret_keys is None else Signer(secret_keys)
        self.result_ttl = result_ttl
        self.enqueue_timeout = enqueue_timeout
        self.max_message_bytes = _limit("max_message_bytes", max_message_bytes)
        self.max_result_bytes = _limit("max_result_bytes", max_result_bytes)
        self.signals = sig.Signals()
        self.hooks = Hooks()
        """Code run in each worker and around each attempt (see `scoter.hooks`)."""
        self.tracing: Tracing | None = None
        if tracing:
            from scoter.contrib.otel import Tracing

            self.tracing = Tracing()
        self.tasks: dict[str, Task[Any, Any]] = {}
        self.periodic: dict[str, Periodic] = {}
        """The periodic tasks by name, with their schedules."""
        self._lock_names: set[str] = set()
        self._empty: tuple[Serializer | None, bytes] = (None, b"")
        self._warned_signed = False
        self._url = url
        self._storage: Storage | None = None
        self._memory = storage_from_url("memory://") if immediate and url is None else None
        """The storage of immediate mode while it stands in for the app's own."""

    def __repr__(self) -> str:
        """Names the storage without opening it (a SQLite file by its absolute path), and
        never with its password."""
        return f"<Scoter {self.name} {self.where}>"

    @property
    def where(self) -> str:
        """The storage's URL as it may be shown: without its password, a SQLite file's path
        made absolute (the default `sqlite:///<name>.db` is relative to the working
        directory). Opens nothing."""
        opened = self._memory if self._memory is not None else self._storage
        where = opened if opened is not None else self._url or default_url(self.name)
        return redact(where.url if isinstance(where, Storage) else absolute_url(where))

    @property
    def immediate(self) -> bool:
        """Whether tasks run in the caller's thread as they are enqueued.

        Setting it True swaps in a fresh memory storage, as Huey does; setting it False goes
        back to the app's own storage (its URL's). In immediate mode a retry runs at once,
        whatever its `retry_delay`; a task enqueued with a delay or eta waits for
        `run_pending()` after it is due.
        """
        return self._immediate

    @immediate.setter
    def immediate(self, on: bool) -> None:
        if on == self._immediate:
            return
        self._immediate = on
        self._memory = storage_from_url("memory://") if on else None

    @property
    def storage(self) -> Storage:
        """The storage, opened on first use (immediate mode's memory storage while it runs)."""
        if self._memory is not None:
            return self._memory
        if self._storage is None:
            url = self._url if self._url is not None else default_url(self.name)
            self._storage = url if isinstance(url, Storage) else storage_from_url(url)
        return self._storage

    # -- registering tasks -----------------------------------------------------------------

    @overload
    def task(self, fn: Callable[P, Coroutine[Any, Any, R]]) -> AsyncTask[P, R]: ...

    @overload
    def task(self, fn: Callable[P, R]) -> Task[P, R]: ...

    @overload
    def task(
        self,
        *,
        name: str | None = None,
        queue: str | None = None,
        priority: int = 0,
        retries: int = 0,
        retry_delay: float = 0.0,
        retry_backoff: float = 1.0,
        retry_jitter: float = 0.0,
        retry_max_delay: float = 3600.0,
        max_crashes: int = 3,
        max_interruptions: int = 20,
        context: Literal[True],
        timeout: float | None = None,
        expires: Moment | None = None,
        unique: bool = False,
        concurrency: int | None = None,
        rate_limit: str | None = None,
    ) -> ContextTaskDecorator: ...

    @overload
    def task(
        self,
        *,
        name: str | None = None,
        queue: str | None = None,
        priority: int = 0,
        retries: int = 0,
        retry_delay: float = 0.0,
        retry_backoff: float = 1.0,
        retry_jitter: float = 0.0,
        retry_max_delay: float = 3600.0,
        max_crashes: int = 3,
        max_interruptions: int = 20,
        context: Literal[False] = False,
        timeout: float | None = None,
        expires: Moment | None = None,
        unique: bool = False,
        concurrency: int | None = None,
        rate_limit: str | None = None,
    ) -> TaskDecorator: ...

    def task(self, fn: Callable[..., Any] | None = None, **options: Any) -> Any:
        """Register a function as a task: `@app.task` or `@app.task(retries=3, ...)`.

        Options: name (default: the function's name), queue, priority (higher runs first),
        retries, retry_delay, retry_backoff, retry_jitter, retry_max_delay, max_crashes,
        max_interruptions (see RetryPolicy), context (pass the TaskContext as the function's
        `ctx` parameter, best its first), timeout (seconds an attempt may run; past it the
        attempt counts as an error), expires (a run not started this long after its enqueue —
        seconds or a timedelta — or by a datetime ends dead `expired`), unique (a call made
        while a live task has the same arguments returns that task's Result), concurrency (at
        most this many attempts running at once across every consumer), rate_limit ("20/s",
        "100/m", "1000/h": at most that many starts in any such window, fleet-wide; tasks held
        back by a limit wait queued, see docs/coordination.md). An `async def` function
        becomes an AsyncTask, which runs on a worker started with `-k asyncio`.
        """
        check_options(options)
        if fn is not None:
            return self._register(fn, **options)
        return lambda f: self._register(f, **options)

    def periodic_task(
        self, schedule: Schedule, *, catch_up: bool | None = None, **options: Any
    ) -> Callable[[Callable[P, R]], Task[P, R]]:
        """Register a task that runs once per slot of `schedule` (`crontab(...)` or
        `every(...)`), however many consumers run: `@app.periodic_task(crontab(minute="0"))`.

        The function takes no arguments (a `ctx` with `context=True`, whose `scheduled_for`
        is the slot). Options are `task()`'s; `expires` counts from the slot's time. Slots
        missed while no consumer ran: by default the latest runs once; `catch_up=True` runs
        each (at most 100), `catch_up=False` none.
        """
        if not isinstance(schedule, Schedule):
            raise TypeError(
                f"periodic_task needs a schedule, crontab(...) or every(...), not {schedule!r}"
            )
        check_options(options)

        def register(fn: Callable[P, R]) -> Task[P, R]:
            task = self._register(fn, **options)
            task.check_call(task.name, (), {})  # each slot calls it without arguments
            self.periodic[task.name] = Periodic(task.name, schedule, catch_up)
            return task

        return register

    def slot_task(self, name: str, slot: int) -> NewTask:
        """The task of periodic task `name`'s slot, with the id derived from both; its
        `expires` counts from the slot."""
        expires = self.expiry(name, None, float(slot))
        return self._new_task(slot_id(name, slot), name, (), {}, None, None, None, None, expires)

    def _register(
        self,
        fn: Callable[P, R],
        *,
        name: str | None = None,
        queue: str | None = None,
        priority: int = 0,
        context: bool = False,
        timeout: float | None = None,
        expires: Moment | None = None,
        unique: bool = False,
        concurrency: int | None = None,
        rate_limit: str | None = None,
        **retry_options: Any,
    ) -> Task[P, R]:
        """`fn` as a task of this app, with options that `check_options` accepted."""
        task_name = check_name("task", name or getattr(fn, "__name__", ""))
        queue = check_name("queue", queue or self.default_queue)
        existing = self.tasks.get(task_name)
        if existing is not None and _origin(existing.fn) != _origin(fn):
            raise ConfigurationError(
                f"two tasks are named {task_name!r}: give one of them @app.task(name=...)"
            )
        to_deadline("expires", expires, 0.0)  # a bad value fails here, not at each enqueue
        kind = AsyncTask if inspect.iscoroutinefunction(fn) else Task
        task: Task[P, R] = kind(
            self, fn, name=task_name, queue=queue, priority=priority,
            policy=RetryPolicy(**retry_options), context=context, timeout=timeout,
            expires=expires, unique=bool(unique),
            limit=limit_of(task_name, concurrency, rate_limit),
        )  # fmt: skip
        self.tasks[task_name] = task
        return task

    # -- enqueueing ------------------------------------------------------------------------

    @overload
    def enqueue(self, task: Pipeline | Group) -> ResultGroup: ...

    @overload
    def enqueue(self, task: Chord) -> ChordResult: ...

    @overload
    def enqueue(
        self, task: Task[P, R] | Message | sig.TaskRef | str, *args: Any, **kwargs: Any
    ) -> Result[Any]: ...

    def enqueue(
        self,
        task: Task[P, R] | Message | sig.TaskRef | str | Pipeline | Group | Chord,
        *args: Any,
        **kwargs: Any,
    ) -> Result[Any] | ResultGroup | ChordResult:
        """Enqueue a task (or a registered task's name) with arguments, a prepared Message
        (`task.s(...)`, or `Message(name, ...)` for a task this process does not register),
        or again the task a signal receiver was given — a no-op while that task is live. A
        pipeline or group gives a ResultGroup, a chord a ChordResult (see scoter.flows)."""
        if isinstance(task, (Pipeline, Group, Chord)):
            return flows.enqueue(self, task)
        if isinstance(task, sig.TaskRef):
            task = Message(task.name, task.args, task.kwargs, id=task.id, queue=task.queue or None)
        elif isinstance(task, str):
            task = Message(self._registered(task).name, args, kwargs)
        elif not isinstance(task, (Message, Task)):
            raise TypeError(
                f"enqueue takes a task, its name or a Message, not {type(task).__name__}"
            )
        message = task if isinstance(task, Message) else Message(task.name, args, kwargs)
        return self.enqueue_message(message)

    def _registered(self, name: str) -> Task[Any, Any]:
        """The task registered as `name`, or a TypeError that says what to do."""
        task = self.tasks.get(name)
        if task is None:
            known = ", ".join(sorted(self.tasks)) or "none"
            raise TypeError(
                f"no task named {name!r} is registered on app {self.name!r} (registered: "
                f"{known}); to enqueue a task another process defines, pass "
                f"Message({name!r}, args, kwargs)"
            )
        return task

    async def aenqueue(
        self, task: Task[P, R] | Message | sig.TaskRef | str, *args: Any, **kwargs: Any
    ) -> Result[Any]:
        """`enqueue` for coroutines: the storage call runs on a thread, not the event loop."""
        return await asyncio.to_thread(self._enqueue_one, task, *args, **kwargs)

    def _enqueue_one(
        self, task: Task[P, R] | Message | sig.TaskRef | str, *args: Any, **kwargs: Any
    ) -> Result[Any]:
        return self.enqueue(task, *args, **kwargs)

    def enqueue_message(self, message: Message) -> Result[Any]:
        return self.enqueue_many([message])[0]

    def _enqueue_call(
        self, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Result[Any]:
        """What calling a task does: `enqueue_message(Message(name, args, kwargs))`, without
        building the Message (unless it is traced)."""
        if self.tracing is not None:
            return self.enqueue_message(Message(name, args, kwargs))
        expires = self._expiry_of_call(name)
        new = self._new_task(new_id(), name, args, kwargs, None, None, None, None, expires)
        [task_id] = self._store((new,))
        if self.signals and task_id == new.id:
            ref = sig.TaskRef(new.id, name, new.queue, args, kwargs)
            self.signals.send(sig.SIGNAL_ENQUEUED, ref)
        if self.immediate:
            self.run_pending()
        return Result(self, task_id)

    def enqueue_many(self, messages: Iterable[Message]) -> list[Result[Any]]:
        """Store many messages in one atomic storage call; returns their Results in order."""
        messages = list(messages)
        if self.tracing is not None and messages:
            return self.tracing.enqueue(messages, self._enqueue_listed)
        return self._enqueue_listed(messages)

    def _enqueue_listed(self, messages: list[Message]) -> list[Result[Any]]:
        new_tasks = [self._to_new_task(m) for m in messages]
        ids = self._store(new_tasks)
        if self.signals:
            for m, new, task_id in zip(messages, new_tasks, ids, strict=True):
                if task_id == m.id:  # not another task holding its unique key
                    ref = sig.TaskRef(m.id, m.task, new.queue, m.args, m.kwargs)
                    self.signals.send(sig.SIGNAL_ENQUEUED, ref)
        if self.immediate:
            self.run_pending()
        return [Result(self, task_id) for task_id in ids]

    def _store(self, tasks: Sequence[NewTask]) -> list[str]:
        """Store tasks, retrying outages for up to `enqueue_timeout` with the same ids. A retry
        leaves every stored id as it is, so a try that landed unseen (its reply lost) is
        neither stored nor run twice. Returns the id of each task's Result: its own, or that
        of the live task holding its unique key."""
        storage = self.storage
        unknown = False
        unique = any(t.unique_key for t in tasks)

        def attempt(retry: int) -> list[str]:
            nonlocal unknown
            try:
                if unique:
                    return storage.enqueue_unique(tasks, restart_finished=retry == 0)
                storage.enqueue(tasks, restart_finished=retry == 0)
                return [t.id for t in tasks]
            except storage.transient_errors as exc:
                unknown = unknown or not storage.not_stored(exc)
                raise

        try:
            return through_outages(storage, attempt, within(self.enqueue_timeout), "enqueue")
        except storage.transient_errors as exc:
            raise EnqueueError([t.id for t in tasks], unknown, exc) from exc

    def enqueue_in(self, conn: Connection[Any], messages: Iterable[Message]) -> list[Result[Any]]:
        """Store messages inside the caller's open transaction on `conn` (PostgreSQL storage).

        They exist, and consumers hear of them, only once that transaction commits; a rollback
        leaves no trace. SIGNAL_ENQUEUED is not sent: whether the transaction commits is the
        caller's to know.
        """
        enqueue_in = getattr(self.storage, "enqueue_in", None)
        if enqueue_in is None:
            where = redact(self.storage.url)
            raise ConfigurationError(
                f"enqueue_in needs PostgreSQL storage (postgresql://...), not {where}"
            )
        messages = list(messages)

        def store(listed: list[Message]) -> list[Result[Any]]:
            tasks = [self._to_new_task(m) for m in listed]
            if any(t.unique_key for t in tasks):
                unique_in = getattr(self.storage, "enqueue_unique_in", None)
                assert unique_in is not None  # PostgreSQL's, as enqueue_in
                return [Result(self, task_id) for task_id in unique_in(conn, tasks)]
            enqueue_in(conn, tasks)
            return [Result(self, m.id) for m in listed]

        if self.tracing is not None and messages:
            return self.tracing.enqueue(messages, store)
        return store(messages)

    def _to_new_task(self, m: Message, flow: dict[str, Any] | None = None) -> NewTask:
        """The NewTask of a message, whose id, task name and queue are checked first; `flow`:
        what comes after it in a pipeline or chord (see scoter.flows)."""
        check_id(m.id)
        if m.task not in self.tasks:  # a registered name was checked then
            check_name("task", m.task)
        if m.queue is not None:
            check_name("queue", m.queue)
        expires = self._expiry_of_message(m)
        return self._new_task(
            m.id,
            m.task,
            m.args,
            m.kwargs,
            m.queue,
            m.priority,
            m.eta,
            m.headers,
            expires,
            m.unique_key,
            flow,
            budget=m.budget,
        )

    def _new_task(
        self,
        task_id: str,
        name: str,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        queue: str | None,
        priority: int | None,
        eta: float | None,
        headers: dict[str, str] | None,
        expires: float | None = None,
        key: str | None = None,
        flow: dict[str, Any] | None = None,
        *,
        check: bool = True,
        budget: Budget | None = None,
    ) -> NewTask:
        """The NewTask of one call, whose arguments a registered task checks; what the call
        leaves out comes from its task's options (a `unique` task's key: from its name and
        arguments). `expires` and `budget` travel in the payload, inside the signature."""
        task = self.tasks.get(name)
        if task is None:
            queue = queue or self.default_queue
            priority = 0 if priority is None else priority
            max_crashes = DEFAULT_POLICY.max_crashes
        else:
            if check:  # a chord's callback: its first argument comes when it runs
                task.check_call(name, args, kwargs)
            queue = queue or task.queue
            priority = task.priority if priority is None else priority
            max_crashes = task.policy.max_crashes
        data = self._encode(args, kwargs, headers, expires, flow, budget=budget)
        if self.signer is not None:
            decided = Decided(task_id, name, queue, priority, eta, max_crashes)
            data = self.signer.sign_task(decided, data)
        what = f"the message of task {name!r}"
        check_size(data, self.max_message_bytes, what, "max_message_bytes")
        if key is not None:
            key = given_key(name, key)
        elif task is not None and task.unique:
            key = unique_key(name, args, kwargs)
        return NewTask(task_id, name, queue, data, priority, eta, max_crashes, key)

    # -- results and signals ---------------------------------------------------------------

    def result(self, task_id: str) -> Result[Any]:
        """A handle on the task with this id."""
        return Result(self, task_id)

    def signal(self, *names: str) -> Callable[[sig.Receiver], sig.Receiver]:
        """Register a receiver: `@app.signal(SIGNAL_COMPLETE)`; no names = every signal."""

        def register(receiver: sig.Receiver) -> sig.Receiver:
            self.signals.connect(receiver, *names)
            return receiver

        return register

    def disconnect_signal(self, receiver: sig.Receiver, *names: str) -> None:
        self.signals.disconnect(receiver, *names)

    # -- running ---------------------------------------------------------------------------

    def run_pending(self, queues: Sequence[str] | None = None) -> int:
        """Run every queued task, and every scheduled one that is due, in this thread now
        (immediate mode, tests); returns how many ran. In immediate mode a failed task's
        retries run at once, whatever their delay."""
        from scoter.consumer import attempt
        from scoter.consumer.policy import Policy

        policy = Policy(self, consumer_id="immediate", retry_at_once=self.immediate)
        ran = 0
        all_queues = queues or sorted({t.queue for t in self.tasks.values()} | {self.default_queue})
        storage = self.storage
        while True:
            leases = storage.claim(all_queues, 1, IMMEDIATE_LEASE_S, "immediate")
            if not leases:
                if storage.promote(time.time()):
                    continue  # due now: a retry, or a task whose delay has passed
                return ran
            ctx = attempt.new_context(self, leases[0], IMMEDIATE_LEASE_S)
            why = revocation.revoked_now(self.storage, leases[0], IMMEDIATE_LEASE_S)
            if why is None:
                policy.apply(ctx, attempt.execute(self, ctx))
            else:
                policy.apply(ctx, attempt.Outcome.undeliverable(REVOKED, why))
            ran += 1

    def consumer(self, **options: Any) -> Consumer:
        """A Consumer for this app; see `scoter.consumer.Consumer` for the options."""
        from scoter.consumer.supervisor import Consumer

        return Consumer(self, **options)


def _limit(option: str, value: int | None) -> int | None:
    if value is not None and (type(value) is not int or value <= 0):
        raise ConfigurationError(
            f"{option} must be a positive number of bytes or None, not {value!r}"
        )
    return value


def _origin(fn: Callable[..., Any]) -> tuple[str, str]:
    return getattr(fn, "__module__", ""), getattr(fn, "__qualname__", repr(fn))
