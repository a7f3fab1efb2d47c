"""Result handles: ask for a task's state and value by id."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Generic, TypeVar, overload

from scoter.exceptions import ResultMissing, ResultTimeout, TaskFailed
from scoter.states import State

if TYPE_CHECKING:
    from scoter.app import Scoter
    from scoter.storage.base import TaskInfo

R = TypeVar("R")

NOT_RUN = "not run"
"""The reason of the TaskFailed of a flow step that never runs: a task before it is dead."""
POLL_START_S = 0.002
POLL_MAX_S = 0.1


class Result(Generic[R]):
    """The handle returned when a task is enqueued."""

    __slots__ = ("after", "app", "id")

    def __init__(self, app: Scoter, task_id: str, after: tuple[Result[Any], ...] = ()) -> None:
        self.app = app
        self.id = task_id
        self.after = after
        """The tasks whose success stores this one (the step before it in a pipeline, the
        members of a chord): while they run, a missing record means not stored yet."""

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
                if not await asyncio.to_thread(self._upstream_running):
                    raise ResultMissing(self.id)
            elif info.state in (State.DONE, State.DEAD):
                return self._value(info)
            if deadline is not None and time.monotonic() >= deadline:
                raise ResultTimeout(f"task {self.id} did not finish within {timeout} s")
            await asyncio.sleep(pause)
            pause = min(pause * 2, POLL_MAX_S)

    def _upstream_running(self) -> bool:
        """For a task with no record: whether it is a flow step not stored yet, because a task
        before it still runs. Raises TaskFailed (reason `not run`) when one before it is dead
        or was never run: the flow stops there until that task is retried."""
        running = False
        for before in self.after:
            info = self.app.storage.get(before.id)
            if info is None:
                running = before._upstream_running() or running
            elif info.state is State.DEAD:
                raise TaskFailed(
                    self.id, NOT_RUN,
                    f"{before.id} is dead ({info.reason}): what follows it in its flow does not "
                    f"run until it is retried (`scoter dead retry APP {before.id}`)",
                )  # fmt: skip
            elif info.state is not State.DONE:
                running = True
        return running

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
            if info is None and not self._upstream_running():
                raise ResultMissing(self.id)
            if deadline is not None and time.monotonic() >= deadline:
                raise ResultTimeout(f"task {self.id} did not finish within {timeout} s")
            time.sleep(pause)
            pause = min(pause * 2, POLL_MAX_S)


class ResultGroup:
    """The results of a pipeline's steps, a group's members or `task.map()`, in order.

    Iterable, indexable and sized like a list of `Result`; `get()` gathers the values.
    """

    __slots__ = ("results",)

    def __init__(self, results: list[Result[Any]]) -> None:
        self.results = results

    def __repr__(self) -> str:
        return f"<ResultGroup of {len(self.results)}>"

    def __iter__(self) -> Iterator[Result[Any]]:
        return iter(self.results)

    def __len__(self) -> int:
        return len(self.results)

    @overload
    def __getitem__(self, index: int) -> Result[Any]: ...

    @overload
    def __getitem__(self, index: slice) -> list[Result[Any]]: ...

    def __getitem__(self, index: int | slice) -> Result[Any] | list[Result[Any]]:
        return self.results[index]

    @property
    def ids(self) -> list[str]:
        return [r.id for r in self.results]

    def get(self, blocking: bool = False, timeout: float | None = None) -> list[Any]:
        """Every value, in order, as `Result.get` gives each; `timeout` bounds the whole wait.
        Raises TaskFailed for the first that is dead (or never runs: reason `not run`)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        values = []
        for result in self.results:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            values.append(result.get(blocking, left))
        return values

    __call__ = get

    async def aget(self, timeout: float | None = None) -> list[Any]:
        """`get(blocking=True)` without blocking the event loop."""
        deadline = None if timeout is None else time.monotonic() + timeout
        values = []
        for result in self.results:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            values.append(await result.aget(left))
        return values


class ChordResult:
    """What enqueueing a chord returns (Huey's shape): the members' `results`, the `callback`'s
    Result (whose id is the chord's), and with steps chained after the callback,
    `pipeline_results` (the callback and those steps). `get()` is the callback's value."""

    __slots__ = ("callback", "pipeline_results", "results")

    def __init__(
        self, results: ResultGroup, callback: Result[Any], pipeline: ResultGroup | None = None
    ) -> None:
        self.results = results
        self.callback = callback
        self.pipeline_results = pipeline

    def __repr__(self) -> str:
        return f"<ChordResult {self.id} of {len(self.results)}>"

    @property
    def id(self) -> str:
        return self.callback.id

    def get(self, blocking: bool = False, timeout: float | None = None) -> Any:
        return self.callback.get(blocking, timeout)

    __call__ = get

    async def aget(self, timeout: float | None = None) -> Any:
        return await self.callback.aget(timeout)
