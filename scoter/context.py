"""TaskContext: what a running task can ask of scoter (its id, attempt, stop requests, progress)."""

from __future__ import annotations

import contextvars
import threading
from typing import TYPE_CHECKING, Any

from scoter.exceptions import LeaseLost

if TYPE_CHECKING:
    from scoter.serializers import Serializer
    from scoter.storage.base import Lease, Storage

_current: contextvars.ContextVar[TaskContext | None] = contextvars.ContextVar(
    "scoter_task_context", default=None
)


_UNREAD = object()


class TaskContext:
    """Handed to tasks declared with `context=True` as the `ctx` keyword argument."""

    def __init__(self, lease: Lease, storage: Storage, serializer: Serializer) -> None:
        self._lease = lease
        self._storage = storage
        self._serializer = serializer
        self._stop = threading.Event()
        self.lease_lost = False
        """True once this attempt no longer holds its lease; its writes are refused."""
        self._checkpoint: Any = _UNREAD

    @property
    def task_id(self) -> str:
        return self._lease.id

    @property
    def task_name(self) -> str:
        return self._lease.name

    @property
    def attempt(self) -> int:
        """1 on the first run; every claim counts, whatever ended the previous attempt."""
        return self._lease.attempt

    @property
    def token(self) -> str:
        """The lease token that fences this attempt's writes."""
        return self._lease.token

    @property
    def stop_requested(self) -> bool:
        """True when the consumer is stopping or the lease was lost: checkpoint and return."""
        return self._stop.is_set()

    def request_stop(self) -> None:
        self._stop.set()

    def wait_for_stop(self, timeout: float) -> bool:
        """Sleep up to `timeout` seconds, waking early when a stop is requested."""
        return self._stop.wait(timeout)

    @property
    def checkpoint_state(self) -> Any:
        """What the last `checkpoint()` of any attempt of this task stored, or None."""
        if self._checkpoint is _UNREAD:
            stored = self._lease.checkpoint
            self._checkpoint = None if stored is None else self._serializer.loads(stored)
        return self._checkpoint

    def checkpoint(self, state: Any) -> None:
        """Store progress atomically, fenced by this attempt's lease.

        Raises LeaseLost when another consumer owns the task now: stop working.
        """
        if not self._storage.checkpoint(self._lease.token, self._serializer.dumps(state)):
            self.lease_lost = True
            self._stop.set()
            raise LeaseLost(f"task {self.task_id}: lease lost, checkpoint refused")
        self._checkpoint = state

    @property
    def lease(self) -> Lease:
        return self._lease

    def activate(self) -> contextvars.Token[TaskContext | None]:
        """Make this the context `current_context()` returns; reset with the token."""
        return _current.set(self)


def current_context() -> TaskContext | None:
    """The context of the task running in this thread, or None outside a task."""
    return _current.get()


def deactivate(token: contextvars.Token[TaskContext | None]) -> None:
    """Undo `TaskContext.activate`."""
    _current.reset(token)
