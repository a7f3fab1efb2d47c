"""Result handles: ask for a task's state and value by id."""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Generic, TypeVar

from scoter.exceptions import ResultMissing, ResultTimeout, TaskFailed
from scoter.states import State

if TYPE_CHECKING:
    from scoter.app import Scoter
    from scoter.storage.base import TaskInfo

R = TypeVar("R")

POLL_START_S = 0.002
POLL_MAX_S = 0.1


class Result(Generic[R]):
    """The handle returned when a task is enqueued."""

    __slots__ = ("app", "id")

    def __init__(self, app: Scoter, task_id: str) -> None:
        self.app = app
        self.id = task_id

    def __repr__(self) -> str:
        return f"<Result {self.id}>"

    @property
    def state(self) -> State | None:
        """The task's state now, or None when it is unknown (never stored, or expired)."""
        info = self.app.storage.get(self.id)
        return None if info is None else info.state

    def revoke(self) -> State | None:
        """Revoke this task (`Scoter.revoke_by_id`): waiting, it never starts; running, it is
        asked to stop and ends revoked. Returns the state it was in (None: not live)."""
        return self.app.revoke_by_id(self.id)

    def restore(self) -> bool:
        """Undo `revoke`: queued again (`Scoter.restore_by_id`); True if it was revoked."""
        return self.app.restore_by_id(self.id)

    def is_revoked(self) -> bool:
        """Whether this task ended revoked, or runs and is being revoked."""
        return self.app.is_revoked(self)

    def ready(self) -> bool:
        """True once the task is done or dead."""
        return self.state in (State.DONE, State.DEAD)

    async def aget(self, timeout: float | None = None) -> R | None:
        """Wait for the value without blocking the event loop (storage reads run on a thread).

        Raises TaskFailed when the task is dead, ResultTimeout after `timeout` seconds, and
        ResultMissing at once when the task has no record (see `get`).
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        pause = POLL_START_S
        while True:
            info = await asyncio.to_thread(self.app.storage.get, self.id)
            if info is None:
                raise ResultMissing(self.id)
            if info.state in (State.DONE, State.DEAD):
                return self._value(info)
            if deadline is not None and time.monotonic() >= deadline:
                raise ResultTimeout(f"task {self.id} did not finish within {timeout} s")
            await asyncio.sleep(pause)
            pause = min(pause * 2, POLL_MAX_S)

    def _value(self, info: TaskInfo) -> R | None:
        if info.state is State.DEAD:
            raise TaskFailed(self.id, info.reason or "dead", info.error)
        return None if info.result is None else self.app.decode_result(info.result, self.id)

    def get(self, blocking: bool = False, timeout: float | None = None) -> R | None:
        """The task's return value — which may itself be None.

        Not finished: returns None at once, or with `blocking=True` waits (up to `timeout`
        seconds, then raises ResultTimeout). Dead: raises TaskFailed with reason and error.
        With signing on, a stored result not signed as this task's raises DecodeError.
        No record — its result expired (`result_ttl`), it was purged, or no task has this id:
        returns None, as Huey does, or with `blocking=True` raises ResultMissing at once (a
        record exists from the moment `enqueue` returns, so waiting could not bring it back).
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        pause = POLL_START_S
        while True:
            info = self.app.storage.get(self.id)
            if info is not None and info.state in (State.DONE, State.DEAD):
                return self._value(info)
            if not blocking:
                return None
            if info is None:
                raise ResultMissing(self.id)
            if deadline is not None and time.monotonic() >= deadline:
                raise ResultTimeout(f"task {self.id} did not finish within {timeout} s")
            time.sleep(pause)
            pause = min(pause * 2, POLL_MAX_S)
