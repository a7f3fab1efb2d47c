"""Huey's result handles: `Result` (callable, read once unless `preserve=True`) and
`ResultGroup`, over scoter's task records.

A done task's value is returned once and its record deleted, as Huey pops a result; the
Result object keeps the value for later calls. A dead task raises `TaskException` (and its
record stays, for `scoter dead` to show, retry or purge) — except a task that was revoked,
or expired before it ran, which has no result: None, as in Huey.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from scoter.huey.constants import EmptyData
from scoter.huey.exceptions import ResultTimeout, TaskException
from scoter.huey.records import LIVE, NO_RESULT_REASONS, failure_key, stored_error
from scoter.huey.utils import Error, normalize_time
from scoter.states import State

if TYPE_CHECKING:
    from scoter.huey.api import Huey
    from scoter.huey.tasks import Task
    from scoter.storage.base import TaskInfo

FIRST_POLL_S = 0.005


class Result:
    """The handle of one enqueued task: `result()` or `result.get(blocking=True)`."""

    def __init__(self, huey: Huey, task: Task, upstream: tuple[str, ...] = ()) -> None:
        self.huey = huey
        self.task = task
        self.revoke_id = task.revoke_id
        self.upstream = upstream
        """For a later step of a pipeline: the ids of the steps before it, whose failure
        is this step's (it will never run)."""
        self._result: Any = EmptyData

    def __repr__(self) -> str:
        return f"<Result: task {self.id}>"

    @property
    def id(self) -> str:
        return self.task.id

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.get(*args, **kwargs)

    def is_ready(self) -> bool:
        """Whether the task finished; reads the result as `get()` does (Huey pops it here)."""
        return self._get() is not EmptyData

    def _get(self, preserve: bool = False) -> Any:
        """The value, EmptyData while there is none, an `Error` for a failure (as Huey's)."""
        if self._result is not EmptyData:
            return self._result
        info = self.huey.app.storage.get(self.id)
        if info is None:
            return self._upstream_failure()
        if info.state is State.DEAD and info.reason in NO_RESULT_REASONS:
            return None
        if info.state is not State.DONE:
            return self._failure(info)
        value = None if info.result is None else self.huey.app.decode_result(info.result, self.id)
        self._result = value
        if not preserve:
            self.huey.app.storage.purge(State.DONE, [self.id])
        return value

    def _failure(self, info: TaskInfo) -> Any:
        """The failure the task left (its last one, while retries are pending) as an
        `Error`, kept by this handle once read as Huey keeps an error result; EmptyData when
        there is none."""
        found = stored_error(self.huey, info)
        if found is None:
            return EmptyData
        task, error = found
        self._result = Error(self.huey.build_error_result(task, error))
        self.huey._errors_read.add(failure_key(info))
        return self._result

    def _upstream_failure(self) -> Any:
        """The failure of a dead earlier step of this pipeline step (which then never
        runs); EmptyData while none died."""
        for step_id in self.upstream:
            info = self.huey.app.storage.get(step_id)
            if info is not None and info.state is State.DEAD:
                if info.reason in NO_RESULT_REASONS:
                    return EmptyData
                return self._failure(info)
        return EmptyData

    def get_raw_result(
        self,
        blocking: bool = False,
        timeout: float | None = None,
        backoff: float = 1.15,
        max_delay: float = 1.0,
        revoke_on_timeout: bool = False,
        preserve: bool = False,
    ) -> Any:
        value = self._get(preserve)
        if value is not EmptyData or not blocking:
            return None if value is EmptyData else value
        deadline = None if timeout is None else time.monotonic() + timeout
        pause = FIRST_POLL_S
        while (value := self._get(preserve)) is EmptyData:
            if deadline is not None and time.monotonic() >= deadline:
                if revoke_on_timeout:
                    self.revoke()
                raise ResultTimeout("timed out waiting for result")
            time.sleep(pause if deadline is None else min(pause, deadline - time.monotonic()))
            pause = min(pause * max(backoff, 1.0), max_delay)
        return value

    def get(
        self,
        blocking: bool = False,
        timeout: float | None = None,
        backoff: float = 1.15,
        max_delay: float = 1.0,
        revoke_on_timeout: bool = False,
        preserve: bool = False,
    ) -> Any:
        """The task's value: None while not finished (or with `blocking=True`, wait — up to
        `timeout` s, then ResultTimeout). Raises TaskException when the task failed (or, for
        a pipeline's later step, a step before it)."""
        value = self.get_raw_result(blocking, timeout, backoff, max_delay, revoke_on_timeout,
                                    preserve)  # fmt: skip
        if isinstance(value, Error):
            raise TaskException(value.metadata)
        return value

    def is_revoked(self) -> bool:
        return self.huey.is_revoked(self)

    def revoke(self, revoke_once: bool = True) -> None:
        self.huey.revoke_by_id(self.id, revoke_once=revoke_once)

    def restore(self) -> bool:
        return self.huey.restore_by_id(self.id)

    def reschedule(
        self,
        eta: Any = None,
        delay: Any = None,
        expires: Any = None,
        priority: int | None = None,
        preserve_pipeline: bool = True,
    ) -> Result | ResultGroup | ChordResult | None:
        """Revoke this task (if it has not ended) and enqueue a copy, with a new id, for
        `eta`/`delay` (default now); its per-call retries, delays and timeout are kept."""
        info = self.huey.app.storage.get(self.id)
        if info is not None and info.state in LIVE:
            self.revoke()
        old = self.task
        task = type(old)(
            old.args, old.kwargs, priority=old.priority if priority is None else priority,
            expires=old.expires if expires is None else expires, retries=old.retries,
            retry_delay=old.retry_delay, retry_backoff=old.retry_backoff, timeout=old.timeout,
            on_complete=old.on_complete if preserve_pipeline else None,
            on_error=old.on_error if preserve_pipeline else None,
        )  # fmt: skip
        if eta is not None or delay is not None:
            task.eta = normalize_time(eta, delay, self.huey.utc)
        return self.huey.enqueue(task)

    def reset(self) -> None:
        self._result = EmptyData


class ResultGroup:
    """The Results of several tasks (`map`, `group`, a pipeline's steps)."""

    def __init__(self, results: list[Result]) -> None:
        self._results = results

    def __repr__(self) -> str:
        return f"<ResultGroup: {len(self._results)} results>"

    def get(self, *args: Any, **kwargs: Any) -> list[Any]:
        return [result.get(*args, **kwargs) for result in self._results]

    __call__ = get

    def __getitem__(self, idx: int) -> Any:
        return self._results[idx].get(True)

    def __iter__(self) -> Iterator[Result]:
        return iter(self._results)

    def __len__(self) -> int:
        return len(self._results)

    def as_completed(self, backoff: float = 1.15, max_delay: float = 1.0) -> Iterator[Any]:
        """The values in the order the tasks finish."""
        waiting = deque(self._results)
        delay = dict.fromkeys((r.id for r in waiting), 0.0)
        while waiting:
            result = waiting.popleft()
            if delay[result.id]:
                time.sleep(delay[result.id])
            if result._get() is EmptyData:
                waiting.append(result)
                delay[result.id] = min((delay[result.id] or 0.1) * backoff, max_delay)
            else:
                yield result.get()


class ChordResult:
    """What enqueueing a chord returns: the members' `results` and the callback's value."""

    def __init__(
        self, results: list[Result], callback: Result, pipeline: ResultGroup | None = None
    ) -> None:
        self.results = ResultGroup(results)
        self.callback = callback
        self.pipeline_results = pipeline

    def __repr__(self) -> str:
        return f"<ChordResult: {len(self.results)} members, callback {self.callback.id}>"

    def get(self, *args: Any, **kwargs: Any) -> Any:
        return self.callback.get(*args, **kwargs)

    __call__ = get

    def reset(self) -> None:
        self.callback.reset()
