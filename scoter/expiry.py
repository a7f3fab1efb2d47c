"""When enqueued runs expire: a task's own `expires` and a call's, as seconds since the epoch
(the methods of `Scoter` that compute them; see docs/time.md)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, Protocol

from scoter.times import Moment, check_expires, to_deadline

if TYPE_CHECKING:
    from scoter.task import Message, Task


class _App(Protocol):
    tasks: dict[str, Task[Any, Any]]


class Expiring:
    """The expiry methods of `Scoter`."""

    def expiry(
        self: _App, task: Task[Any, Any] | str, expires: Moment | None, start: float
    ) -> float | None:
        """When a run of `task` enqueued at `start` expires: at `expires` (seconds or a
        timedelta after `start`, or a datetime), else by the task's own `expires`."""
        if expires is not None:
            return to_deadline("expires", expires, start)
        name = task if isinstance(task, str) else task.name
        own = self.tasks.get(name)
        return None if own is None else to_deadline("expires", own.expires, start)

    def _expiry_of_call(self: _App, name: str) -> float | None:
        """The expiry of a call of task `name` enqueued now (a task without one: at once)."""
        task = self.tasks.get(name)
        if task is None or task.expires is None:
            return None
        now = time.time()
        expires = to_deadline("expires", task.expires, now)
        check_expires(expires, None, now)
        return expires

    def _expiry_of_message(self: _App, m: Message) -> float | None:
        """The expiry of message `m` enqueued now: its own, else its task's; refused when no
        run could meet it (past, or before the message's eta)."""
        now = time.time()
        expires = m.expires
        if expires is None:
            task = self.tasks.get(m.task)
            expires = None if task is None else to_deadline("expires", task.expires, now)
        check_expires(expires, m.eta, now)
        return expires
