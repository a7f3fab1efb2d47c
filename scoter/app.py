"""The Scoter facade: register tasks, enqueue them, read results, connect signals."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar, overload

from scoter import signals as sig
from scoter.config import default_url, storage_from_url
from scoter.exceptions import ConfigurationError, DecodeError, TooLarge
from scoter.result import Result
from scoter.retry import RetryPolicy
from scoter.serializers import (
    JSONSerializer,
    PickleSerializer,
    Serializer,
    Signer,
    get_serializer,
)
from scoter.storage.base import NewTask, Storage
from scoter.task import Message, Task, new_id

if TYPE_CHECKING:
    from psycopg import Connection

    from scoter.consumer.supervisor import Consumer

P = ParamSpec("P")
R = TypeVar("R")

DEFAULT_QUEUE = "default"
DEFAULT_POLICY = RetryPolicy()
IMMEDIATE_LEASE_S = 60.0
"""The lease of a task run in the caller's thread (`run_pending`): nothing renews it."""
DEFAULT_MAX_MESSAGE_BYTES = 1 << 20
"""The largest encoded message (its arguments and headers) an app enqueues by default: 1 MiB."""
DEFAULT_MAX_RESULT_BYTES = 1 << 20
"""The largest encoded result an app stores by default: 1 MiB."""


class Scoter:
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
        max_message_bytes: int | None = DEFAULT_MAX_MESSAGE_BYTES,
        max_result_bytes: int | None = DEFAULT_MAX_RESULT_BYTES,
    ) -> None:
        """
        :param name: the app's name; names the default SQLite file.
        :param url: a storage URL (sqlite:///x.db, memory://) or a Storage; default $SCOTER_URL,
            else sqlite:///<name>.db. Immediate mode defaults to memory://.
        :param immediate: run tasks in-process when enqueued (for tests and development).
        :param default_queue: the queue of tasks that do not name one.
        :param serializer: 'json' (default) or 'pickle' (opt-in, trusts producers), or an object.
        :param secret_keys: HMAC keys: the first signs, all verify; unsigned messages go dead.
        :param result_ttl: seconds a done task and its result are kept; None keeps them forever.
        :param max_message_bytes: the largest encoded message `enqueue` accepts (1 MiB; None:
            no limit); a larger one raises TooLarge.
        :param max_result_bytes: the largest encoded result stored (1 MiB; None: no limit); an
            attempt returning a larger one fails with TooLarge, as any error of the task.
        """
        self.name = name
        self.immediate = immediate
        self.default_queue = default_queue
        self.serializer = get_serializer(serializer)
        self.signer = Signer(secret_keys) if secret_keys else None
        self.result_ttl = result_ttl
        self.max_message_bytes = _limit("max_message_bytes", max_message_bytes)
        self.max_result_bytes = _limit("max_result_bytes", max_result_bytes)
        self.signals = sig.Signals()
        self.tasks: dict[str, Task[Any, Any]] = {}
        self._empty: tuple[Serializer | None, Signer | None, bytes] = (None, None, b"")
        self._url = url if url is not None else ("memory://" if immediate else None)
        self._storage: Storage | None = None

    def __repr__(self) -> str:
        return f"<Scoter {self.name} {self.storage.url}>"

    @property
    def storage(self) -> Storage:
        """The storage, opened on first use."""
        if self._storage is None:
            url = self._url if self._url is not None else default_url(self.name)
            self._storage = url if isinstance(url, Storage) else storage_from_url(url)
        return self._storage

    # -- registering tasks -----------------------------------------------------------------

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
        context: bool = False,
        timeout: float | None = None,
    ) -> Callable[[Callable[P, R]], Task[P, R]]: ...

    def task(self, fn: Callable[..., Any] | None = None, **options: Any) -> Any:
        """Register a function as a task: `@app.task` or `@app.task(retries=3, ...)`.

        Options: name (default: the function's name), queue, priority (higher runs first),
        retries, retry_delay, retry_backoff, retry_jitter, retry_max_delay, max_crashes,
        max_interruptions (see RetryPolicy), context (pass `ctx`, a TaskContext), timeout
        (seconds an attempt may run; past it the attempt counts as an error).
        """
        if fn is not None:
            return self._register(fn, **options)
        return lambda f: self._register(f, **options)

    def _register(
        self,
        fn: Callable[P, R],
        *,
        name: str | None = None,
        queue: str | None = None,
        priority: int = 0,
        context: bool = False,
        timeout: float | None = None,
        **retry_options: Any,
    ) -> Task[P, R]:
        task_name = name or fn.__name__
        existing = self.tasks.get(task_name)
        if existing is not None and _origin(existing.fn) != _origin(fn):
            raise ConfigurationError(
                f"two tasks are named {task_name!r}: give one of them @app.task(name=...)"
            )
        task = Task(
            self, fn, name=task_name, queue=queue or self.default_queue, priority=priority,
            policy=RetryPolicy(**retry_options), context=context, timeout=timeout,
        )  # fmt: skip
        self.tasks[task_name] = task
        return task

    # -- enqueueing ------------------------------------------------------------------------

    def enqueue(
        self, task: Task[P, R] | Message | sig.TaskRef, *args: Any, **kwargs: Any
    ) -> Result[Any]:
        """Enqueue a task with arguments, a prepared Message (`task.s(...)`), or again the
        task a signal receiver was given — a no-op while that task is still live."""
        if isinstance(task, sig.TaskRef):
            task = Message(task.name, task.args, task.kwargs, id=task.id, queue=task.queue or None)
        message = task if isinstance(task, Message) else Message(task.name, args, kwargs)
        return self.enqueue_message(message)

    async def aenqueue(
        self, task: Task[P, R] | Message | sig.TaskRef, *args: Any, **kwargs: Any
    ) -> Result[Any]:
        """`enqueue` for coroutines: the storage call runs on a thread, not the event loop."""
        return await asyncio.to_thread(self.enqueue, task, *args, **kwargs)

    def enqueue_message(self, message: Message) -> Result[Any]:
        return self.enqueue_many([message])[0]

    def _enqueue_call(
        self, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Result[Any]:
        """What calling a task does: `enqueue_message(Message(name, args, kwargs))`, without
        building the Message."""
        new = self._new_task(new_id(), name, args, kwargs, None, None, None, None)
        self.storage.enqueue((new,))
        if self.signals:
            ref = sig.TaskRef(new.id, name, new.queue, args, kwargs)
            self.signals.send(sig.SIGNAL_ENQUEUED, ref)
        if self.immediate:
            self.run_pending()
        return Result(self, new.id)

    def enqueue_many(self, messages: Iterable[Message]) -> list[Result[Any]]:
        """Store many messages in one atomic storage call; returns their Results in order."""
        messages = list(messages)
        new_tasks = [self._to_new_task(m) for m in messages]
        self.storage.enqueue(new_tasks)
        if self.signals:
            for m, new in zip(messages, new_tasks, strict=True):
                ref = sig.TaskRef(m.id, m.task, new.queue, m.args, m.kwargs)
                self.signals.send(sig.SIGNAL_ENQUEUED, ref)
        if self.immediate:
            self.run_pending()
        return [Result(self, m.id) for m in messages]

    def enqueue_in(self, conn: Connection[Any], messages: Iterable[Message]) -> list[Result[Any]]:
        """Store messages inside the caller's open transaction on `conn` (PostgreSQL storage).

        They exist, and consumers hear of them, only once that transaction commits; a rollback
        leaves no trace. SIGNAL_ENQUEUED is not sent: whether the transaction commits is the
        caller's to know.
        """
        enqueue_in = getattr(self.storage, "enqueue_in", None)
        if enqueue_in is None:
            raise ConfigurationError(
                f"enqueue_in needs PostgreSQL storage (postgresql://...), not {self.storage.url}"
            )
        messages = list(messages)
        enqueue_in(conn, [self._to_new_task(m) for m in messages])
        return [Result(self, m.id) for m in messages]

    def _to_new_task(self, m: Message) -> NewTask:
        return self._new_task(m.id, m.task, m.args, m.kwargs, m.queue, m.priority, m.eta, m.headers)

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
    ) -> NewTask:
        """The NewTask of one call; what the call leaves out comes from its task's options."""
        task = self.tasks.get(name)
        if task is None:
            queue = queue or self.default_queue
            priority = 0 if priority is None else priority
            max_crashes = DEFAULT_POLICY.max_crashes
        else:
            queue = queue or task.queue
            priority = task.priority if priority is None else priority
            max_crashes = task.policy.max_crashes
        payload = self._encode(args, kwargs, headers)
        what = f"the message of task {name!r}"
        check_size(payload, self.max_message_bytes, what, "max_message_bytes")
        return NewTask(task_id, name, queue, payload, priority, eta, max_crashes)

    # -- encoding --------------------------------------------------------------------------

    def encode_message(self, message: Message) -> bytes:
        return self._encode(message.args, message.kwargs, message.headers)

    def _encode(
        self, args: tuple[Any, ...], kwargs: dict[str, Any], headers: dict[str, str] | None
    ) -> bytes:
        if not args and not kwargs and not headers:
            return self._empty_payload()
        body: dict[str, Any] = {"args": list(args), "kwargs": kwargs}
        if headers:
            body["headers"] = headers
        data = self.serializer.dumps(body)
        return self.signer.sign(data) if self.signer else data

    def _empty_payload(self) -> bytes:
        """The payload of a call without arguments, encoded once per serializer and signer
        (a built-in serializer's: a custom one need not give the same bytes every time)."""
        cached = self._empty
        if cached[0] is self.serializer and cached[1] is self.signer:
            return cached[2]
        data = self.serializer.dumps({"args": [], "kwargs": {}})
        payload = self.signer.sign(data) if self.signer else data
        if type(self.serializer) in (JSONSerializer, PickleSerializer):
            self._empty = (self.serializer, self.signer, payload)
        return payload

    def decode_message(self, payload: bytes) -> tuple[tuple[Any, ...], dict[str, Any]]:
        """(args, kwargs) of a stored payload; raises DecodeError when it cannot be trusted."""
        data = self.signer.verify(payload) if self.signer else payload
        body = self.serializer.loads(data)
        if not isinstance(body, dict) or not isinstance(body.get("args"), list):
            raise DecodeError("payload is not a scoter message (no args list)")
        kwargs = body.get("kwargs") or {}
        if not isinstance(kwargs, dict):
            raise DecodeError("payload kwargs is not a mapping")
        return tuple(body["args"]), kwargs

    def encode_result(self, value: Any) -> bytes:
        return self.serializer.dumps(value)

    def decode_result(self, data: bytes) -> Any:
        return self.serializer.loads(data)

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
        """Run every queued task in this thread now (immediate mode, tests); returns how many."""
        from scoter.consumer import attempt
        from scoter.consumer.policy import Policy

        policy = Policy(self, consumer_id="immediate")
        ran = 0
        all_queues = queues or sorted({t.queue for t in self.tasks.values()} | {self.default_queue})
        while leases := self.storage.claim(all_queues, 1, IMMEDIATE_LEASE_S, "immediate"):
            ctx = attempt.new_context(self, leases[0], IMMEDIATE_LEASE_S)
            policy.apply(ctx, attempt.execute(self, ctx))
            ran += 1
        self.storage.promote(time.time())
        return ran

    def consumer(self, **options: Any) -> Consumer:
        """A Consumer for this app; see `scoter.consumer.Consumer` for the options."""
        from scoter.consumer.supervisor import Consumer

        return Consumer(self, **options)


def check_size(data: bytes, limit: int | None, what: str, option: str) -> None:
    """Raise TooLarge when `data` (`what`: "the message of task 'x'") is over `limit` bytes,
    the app's `option`."""
    if limit is not None and len(data) > limit:
        raise TooLarge(
            f"{what} is {len(data):,} bytes, over the limit of {limit:,} ({option}): pass large "
            f"data by reference (a path, a URL, an object-store key), or raise the limit: "
            f"Scoter(..., {option}=...)"
        )


def _limit(option: str, value: int | None) -> int | None:
    if value is not None and (type(value) is not int or value <= 0):
        raise ConfigurationError(
            f"{option} must be a positive number of bytes or None, not {value!r}"
        )
    return value


def _origin(fn: Callable[..., Any]) -> tuple[str, str]:
    return getattr(fn, "__module__", ""), getattr(fn, "__qualname__", repr(fn))
