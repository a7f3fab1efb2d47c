"""Locks, rate limits, task limits and unique keys, as an app offers them (Huey's names).

`lock_task` inside a running task holds the lock under the task's lease: the consumer's
heartbeat renews it with the lease, it is free once the attempt ends in any way or the lease
expires (its holder SIGKILLed, frozen, or its host gone), and only its own acquisition can
release it. Outside a task a lock needs a `ttl`, or renews itself from a background thread
while held (LOCK_LEASE_S at a time). The storage says how (`Storage.acquire_lock`).
"""

from __future__ import annotations

import abc
import contextvars
import functools
import hashlib
import inspect
import json
import logging
import math
import os
import re
import socket
import threading
import time
from collections.abc import Callable
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar

from scoter.context import current_context
from scoter.exceptions import ConfigurationError, RateLimitExceeded, TaskLockedException
from scoter.serializers import TAG, to_json
from scoter.storage.base import Storage
from scoter.storage.coordination import TaskLimit
from scoter.task import check_name, new_id

log = logging.getLogger("scoter")

F = TypeVar("F", bound=Callable[..., Any])

LOCK_LEASE_S = 30.0
"""How long a lock taken outside a task without a `ttl` is held between two renewals: how long
it outlives a holder that died."""
LOCK_RENEW_S = 10.0
"""How often such a lock is renewed."""
RATE = re.compile(r"\s*(\d+)\s*/\s*([smh])\s*")
PERIODS = {"s": 1.0, "m": 60.0, "h": 3600.0}


def parse_rate(text: object) -> tuple[int, float]:
    """`"20/s"` → (20, 1.0): a count per second, minute or hour."""
    match = RATE.fullmatch(text) if isinstance(text, str) else None
    if match is None or int(match[1]) < 1:
        raise ConfigurationError(
            f"bad rate_limit {text!r}: give starts per second, minute or hour, as '20/s', "
            "'100/m' or '1000/h' (at least 1)"
        )
    return int(match[1]), PERIODS[match[2]]


def check_concurrency(value: object) -> int | None:
    if value is None:
        return None
    if type(value) is not int or value < 1:
        raise ConfigurationError(
            f"concurrency must be a whole number of attempts, at least 1 (or None), not {value!r}"
        )
    return value


def limit_of(name: str, concurrency: int | None, rate_limit: str | None) -> TaskLimit:
    """A task's limits as the storage keeps them."""
    rate, per = parse_rate(rate_limit) if rate_limit is not None else (None, None)
    return TaskLimit(name, check_concurrency(concurrency), rate, per)


def unique_key(name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
    """A task's unique key from its name and arguments: the same arguments, passed the same
    way, give the same key (dict keys in any order, set members too)."""
    try:
        canonical = json.dumps(_sorted_sets(to_json([list(args), kwargs])), sort_keys=True)
    except TypeError as exc:
        raise TypeError(f"unique task {name!r}: its arguments make no key: {exc}") from exc
    return f"{name}:{hashlib.sha256(canonical.encode()).hexdigest()[:40]}"


def given_key(name: str, key: str) -> str:
    """The stored form of a `unique_key=` given for a call of task `name`: keys are per task."""
    if not isinstance(key, str) or not key:
        raise ValueError(f"unique_key must be a non-empty string, not {key!r}")
    return f"{name}:{key}"


def _sorted_sets(value: Any) -> Any:
    """`to_json`'s output with the members of each set in one order."""
    if isinstance(value, list):
        return [_sorted_sets(v) for v in value]
    if not isinstance(value, dict):
        return value
    inner = {k: _sorted_sets(v) for k, v in value.items()}
    if inner.get(TAG) in ("set", "frozenset"):
        inner["v"] = sorted(inner["v"], key=lambda v: json.dumps(v, sort_keys=True))
    return inner


def _positive(option: str, value: float | None) -> float | None:
    if value is not None and not (isinstance(value, int | float) and math.isfinite(value)):
        raise ConfigurationError(f"{option} must be a number of seconds, not {value!r}")
    if value is not None and value <= 0:
        raise ConfigurationError(f"{option} must be above 0 seconds (or None), not {value!r}")
    return value


class _Decorates(abc.ABC):
    """Decorates a function (sync or async) to run each call inside `with self:`."""

    @abc.abstractmethod
    def __enter__(self) -> Any: ...

    @abc.abstractmethod
    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None: ...

    def __call__(self, fn: F) -> F:
        if inspect.iscoroutinefunction(fn):

            @functools.wraps(fn)
            async def run_async(*args: Any, **kwargs: Any) -> Any:
                with self:
                    return await fn(*args, **kwargs)

            return run_async  # type: ignore[return-value]

        @functools.wraps(fn)
        def run(*args: Any, **kwargs: Any) -> Any:
            with self:
                return fn(*args, **kwargs)

        return run  # type: ignore[return-value]


class TaskLock(_Decorates):
    """`app.lock_task(name, ttl=None)`: a context manager and decorator that holds lock `name`
    for its block (or each call), raising TaskLockedException when another holds it."""

    def __init__(self, app: Coordinating, name: str, ttl: float | None = None) -> None:
        self.app = app
        self.name = check_name("lock", name)
        self.ttl = _positive("ttl", ttl)
        self._held: contextvars.ContextVar[tuple[_Holding, ...]] = contextvars.ContextVar(
            f"scoter_lock_{name}", default=()
        )

    def __repr__(self) -> str:
        return f"<TaskLock {self.name}>"

    def __enter__(self) -> TaskLock:
        holding = self.acquire()
        self._held.set((*self._held.get(), holding))
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        *rest, holding = self._held.get()
        self._held.set(tuple(rest))
        holding.release()

    def acquire(self) -> _Holding:
        """Take the lock, or raise TaskLockedException; `release()` what this returns."""
        storage, owner = self.app.storage, new_id()
        ctx = current_context()
        if ctx is not None:  # under the running task's lease
            taken = storage.acquire_lock(
                self.name, owner, ttl=self.ttl, task_id=ctx.task_id, lease_token=ctx.token,
                holder=f"task {ctx.task_id} ({ctx.task_name})",
            )  # fmt: skip
        else:
            holder = f"{socket.gethostname()}:{os.getpid()}"
            ttl = self.ttl or LOCK_LEASE_S
            taken = storage.acquire_lock(self.name, owner, ttl=ttl, holder=holder)
        if not taken:
            raise TaskLockedException(self.name)
        holding = _Holding(storage, self.name, owner)
        if ctx is None and self.ttl is None:
            RENEWER.add(holding)
        return holding


class _Holding:
    """One acquisition of a lock."""

    def __init__(self, storage: Storage, name: str, owner: str) -> None:
        self.storage = storage
        self.name = name
        self.owner = owner

    def release(self) -> None:
        RENEWER.discard(self)
        if not self.storage.release_lock(self.name, self.owner):
            log.warning(
                "lock %s was no longer held when its block ended (its ttl or lease ran out, or "
                "it was flushed): another holder may have overlapped",
                self.name,
            )


class _Renewer:
    """Renews the locks held outside a task without a ttl, each LOCK_RENEW_S after it was
    taken or last renewed, from one daemon thread."""

    def __init__(self) -> None:
        self._due: dict[_Holding, float] = {}
        self._wake = threading.Condition()
        self._pid = 0

    def add(self, holding: _Holding) -> None:
        with self._wake:
            self._due[holding] = time.monotonic() + LOCK_RENEW_S
            self._wake.notify()
            if self._pid != os.getpid():  # none yet, or one a fork's child does not have
                self._pid = os.getpid()
                threading.Thread(target=self._run, name="scoter-locks", daemon=True).start()

    def discard(self, holding: _Holding) -> None:
        with self._wake:
            self._due.pop(holding, None)

    def _run(self) -> None:
        while True:
            with self._wake:
                now = time.monotonic()
                due = [h for h, at in self._due.items() if at <= now]
                if not due:
                    self._wake.wait(min(self._due.values(), default=now + 60.0) - now)
                    continue
                for holding in due:
                    self._due[holding] = now + LOCK_RENEW_S
            for holding in due:
                self._renew(holding)

    def _renew(self, holding: _Holding) -> None:
        try:
            renewed = holding.storage.renew_lock(holding.name, holding.owner, LOCK_LEASE_S)
        except Exception as exc:  # a storage outage: the next round tries again
            log.warning("could not renew lock %s: %r", holding.name, exc)
            return
        with self._wake:
            lapsed = not renewed and self._due.pop(holding, None) is not None  # not released
        if lapsed:
            log.warning("lock %s lapsed while held (flushed, or not renewed in time)", holding.name)


RENEWER = _Renewer()


class RateLimit(_Decorates):
    """`app.rate_limit(name, limit, per)`: a context manager and decorator that counts one use
    of `name` on entry, raising RateLimitExceeded when `limit` uses were counted in the last
    `per` seconds (a sliding window, shared by every process of the storage)."""

    def __init__(self, app: Coordinating, name: str, limit: int, per: float) -> None:
        if type(limit) is not int or limit < 1:
            raise ConfigurationError(f"limit must be a whole number, at least 1, not {limit!r}")
        self.app = app
        self.name = check_name("rate limit", name)
        self.limit = limit
        self.per = _positive("per", per) or 0.0

    def reset(self) -> None:
        """Forget the uses counted so far, across every process: the window starts empty."""
        self.app.storage.reset_rate(self.name)

    def __enter__(self) -> RateLimit:
        if not self.app.storage.take_rate(self.name, self.limit, self.per):
            raise RateLimitExceeded(self.name, self.limit, self.per)
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        return None


class Coordinating:
    """The locks and rate limits of an app (`Scoter` mixes this in), by Huey's names."""

    _lock_names: set[str]
    """The names of the locks `lock_task` made, which `flush_locks` frees."""

    if TYPE_CHECKING:

        @property
        def storage(self) -> Storage: ...

    def lock_task(self, name: str, ttl: float | None = None) -> TaskLock:
        """A lock, as a context manager or decorator: `with app.lock_task("report"):` or
        `@app.lock_task("report")`. Held by another, entering raises TaskLockedException.

        Inside a running task it is held under the task's lease: renewed with it, free once
        the attempt ends or the lease expires. Outside a task, for at most `ttl` seconds, or
        without a `ttl` renewed by a background thread while held (and free LOCK_LEASE_S after
        its process died)."""
        lock = TaskLock(self, name, ttl)
        self._lock_names.add(lock.name)
        return lock

    def is_locked(self, name: str) -> bool:
        """Whether lock `name` is held now."""
        return bool(self.storage.locks([check_name("lock", name)]))

    def flush_locks(self, *names: str) -> set[str]:
        """Free locks whoever holds them, as Huey's does: these, and those this app made with
        `lock_task` (say, a lock outside a task left with a long `ttl` by a process that
        died). Returns the names of those that were held."""
        wanted = sorted({*(check_name("lock", n) for n in names), *self._lock_names})
        return set(self.storage.flush_locks(wanted)) if wanted else set()

    def rate_limit(self, name: str, limit: int, per: float) -> RateLimit:
        """A context manager or decorator counting one use of `name` on entry, which raises
        RateLimitExceeded once `limit` uses were counted in the last `per` seconds (a sliding
        window across every process). For tasks, prefer `@app.task(rate_limit="20/s")`: the
        tasks wait queued instead of failing."""
        return RateLimit(self, name, limit, per)
