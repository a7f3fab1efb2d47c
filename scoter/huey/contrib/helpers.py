"""Huey's helpers (`huey.contrib.helpers`): `RedisSemaphore` and `lock_task_semaphore` on
scoter's locks, on every storage that keeps locks (not only Redis).

A semaphore of `value` is `value` scoter locks, `name.0` … `name.<value-1>`: acquiring takes a
free one. For "at most N runs of a task at once", prefer `@huey.task(concurrency=N)`: scoter
enforces it when claiming, so the tasks beyond N wait queued instead of failing.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from scoter.huey.exceptions import ConfigurationError, TaskLockedException
from scoter.task import check_name

if TYPE_CHECKING:
    from scoter.huey.api import Huey


DEFAULT_TIMEOUT_S = 300.0
"""How long a semaphore slot is held unless renewed (Huey's default)."""


class RedisSemaphore:
    """At most `value` holders of `name` at once, each for `timeout` seconds (default 300)
    unless it renews. `acquire()` returns the holder's id, or None when every slot is held."""

    def __init__(self, huey: Huey, name: str, value: int = 1, timeout: float | None = None) -> None:
        self.huey = huey
        self.name = check_name("lock", name)
        self.key = f"{huey.name}.lock.{name}"
        self.value = value
        self.timeout = timeout or DEFAULT_TIMEOUT_S
        self.slots = [f"{name}.{slot}" for slot in range(value)]

    def _storage(self) -> Any:
        storage = self.huey.app.storage
        if not getattr(storage, "coordination", False):
            raise ConfigurationError(
                f"RedisSemaphore needs a storage that keeps locks; {storage.url} does not: "
                "use @huey.task(concurrency=N)"
            )
        return storage

    def acquire(self, name: str | None = None) -> str | None:
        """Take a slot for holder `name` (default a new id); its id, or None when all are
        held. A holder that holds a slot already keeps it (and its id is returned)."""
        holder = name or str(uuid.uuid4())
        if self.renew(holder):
            return holder
        storage = self._storage()
        for slot in self.slots:
            if storage.acquire_lock(slot, holder, ttl=self.timeout, holder=f"semaphore {holder}"):
                return holder
        return None

    def renew(self, name: str) -> bool:
        """Hold `name`'s slot `timeout` seconds more; False when it holds none (expired)."""
        storage = self._storage()
        return any(storage.renew_lock(slot, name, self.timeout) for slot in self.slots)

    def release(self, name: str) -> int:
        """Free `name`'s slot: 1, or 0 when it held none."""
        storage = self._storage()
        return int(any([storage.release_lock(slot, name) for slot in self.slots]))


def lock_task_semaphore(
    huey: Huey, lock_name: str, value: int = 1, timeout: float | None = None
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """At most `value` runs of the decorated function hold one of the `lock_name` slots at
    once; the others raise TaskLockedException. Slots are scoter locks, held under the
    running task's lease (a crashed holder's slot frees itself)."""

    def decorator(fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)
        def inner(*args: Any, **kwargs: Any) -> Any:
            for slot in range(value):
                try:
                    lock = huey.lock_task(f"{lock_name}.{slot}", ttl=timeout)
                    lock.acquire()
                except TaskLockedException:
                    continue
                try:
                    return fn(*args, **kwargs)
                finally:
                    lock.__exit__(None, None, None)
            raise TaskLockedException(f"unable to acquire semaphore {lock_name}")

        return inner

    return decorator
