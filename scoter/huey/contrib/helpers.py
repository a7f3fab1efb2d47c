"""Huey's helpers (`huey.contrib.helpers`): `lock_task_semaphore` on scoter's locks.

Huey's `RedisSemaphore` needs Huey's own Redis keys and is not mapped: for "at most N at
once", scoter has `@huey.task(concurrency=N)`, enforced at claim time across the fleet.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from scoter.huey.exceptions import TaskLockedException

if TYPE_CHECKING:
    from scoter.huey.api import Huey


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
