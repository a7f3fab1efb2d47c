"""The task decorator's result, and the message envelope it enqueues."""

from __future__ import annotations

import datetime as dt
import functools
import os
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, ParamSpec, TypeVar

from scoter.retry import RetryPolicy
from scoter.storage.coordination import TaskLimit

if TYPE_CHECKING:
    from psycopg import Connection

    from scoter.app import Scoter
    from scoter.result import Result

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
    unique_key: str | None = None
    """While a task of this name and key is scheduled, queued or running, enqueueing this
    message returns that task's Result instead of storing a second one (None: a `unique` task's
    key comes from its arguments; any other task has none)."""


def to_eta(delay: float | dt.timedelta | None, eta: float | dt.datetime | None) -> float | None:
    """One epoch timestamp from either a delay (seconds or timedelta) or an eta."""
    if delay is not None and eta is not None:
        raise ValueError("give delay or eta, not both")
    if isinstance(delay, dt.timedelta):
        delay = delay.total_seconds()
    if delay is not None:
        return time.time() + delay
    if isinstance(eta, dt.datetime):
        if eta.tzinfo is None:
            raise ValueError("eta must be timezone-aware (e.g. datetime.now(timezone.utc))")
        return eta.timestamp()
    return eta


class Task(Generic[P, R]):
    """A function registered with an app. Calling it enqueues a run and returns a Result."""

    def __init__(
        self,
        app: Scoter,
        fn: Callable[P, R],
        *,
        name: str,
        queue: str,
        priority: int,
        policy: RetryPolicy,
        context: bool,
        timeout: float | None = None,
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
        self.unique = unique
        """Whether a call is left out while a live task has the same arguments."""
        self.limit = limit or TaskLimit(name)
        """Its concurrency and rate limits, which every claim keeps."""
        functools.update_wrapper(self, fn)

    def __repr__(self) -> str:
        return f"<Task {self.name} queue={self.queue}>"

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

    def schedule(
        self,
        args: Iterable[Any] = (),
        kwargs: dict[str, Any] | None = None,
        *,
        delay: float | dt.timedelta | None = None,
        eta: float | dt.datetime | None = None,
        priority: int | None = None,
        id: str | None = None,
        unique_key: str | None = None,
    ) -> Result[R]:
        """Enqueue a run that starts after `delay` seconds or at `eta` (Huey's signature);
        with `unique_key`, only while no task of this name with that key is live."""
        message = Message(
            self.name, tuple(args), dict(kwargs or {}), id=id or new_id(),
            priority=priority, eta=to_eta(delay, eta), unique_key=unique_key,
        )  # fmt: skip
        return self.app.enqueue_message(message)

    def map(self, argument_lists: Iterable[Iterable[Any]]) -> list[Result[R]]:
        """Enqueue one run per argument list, all in one storage call."""
        return self.app.enqueue_many(Message(self.name, tuple(a)) for a in argument_lists)

    def call_local(self, *args: P.args, **kwargs: P.kwargs) -> R:
        """Run the function here and now, without the queue."""
        return self.fn(*args, **kwargs)
