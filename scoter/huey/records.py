"""Huey's view of scoter's task records: the Task object a stored or claimed task stands for
(the retries it has left, its grown retry delay, its time limit and expiry, as Huey's Task
carries them), a call's own budget, and the error a failed attempt left for its Result.

A failure Huey surfaces (any exception but RetryTask, a lock or a rate limit) gets a note
with its repr (`ERROR_NOTE`), which scoter stores with the traceback: the Result finds it there,
on every backend, and gives Huey's `metadata['error']` (`'TestError(1)'`).
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from scoter.exceptions import DecodeError
from scoter.huey.exceptions import (
    RateLimitExceeded,
    RetryTask,
    TaskException,
    TaskLockedException,
)
from scoter.huey.tasks import PeriodicTask, Task
from scoter.huey.utils import from_timestamp
from scoter.retry import Budget
from scoter.states import State

if TYPE_CHECKING:
    from scoter.envelope import Decoded
    from scoter.huey.api import Huey
    from scoter.storage.base import TaskInfo

ERROR_NOTE = "huey error: "
"""Starts the note a surfaced failure carries: the rest of the line is its repr."""
RETRYING_EXCEPTIONS = (RetryTask, RateLimitExceeded, TaskLockedException)
"""Not failures while a retry is pending (Huey's RETRYING_EXCEPTIONS): no note, no error
result until the last attempt."""
LIVE = (State.SCHEDULED, State.QUEUED, State.RUNNING)
NO_RESULT_REASONS = ("revoked", "expired")
"""Dead reasons of a task that never ran (Huey stores no result for it): its Result gives
None."""


# -- a call's own budget -----------------------------------------------------------------------


def budget_of(task: Task) -> Budget | None:
    """The per-call retries, retry_delay, retry_backoff and timeout of `task` that differ from
    its task's (`schedule(..., retries=5)`, `s(..., timeout=3)`); None when none does."""
    cls = type(task)
    given: dict[str, Any] = {}
    if task.retries != cls.default_retries:
        given["retries"] = int(task.retries)
    if task.retry_delay != cls.default_retry_delay:
        given["retry_delay"] = float(task.retry_delay or 0)
    if task.retry_backoff != cls.default_retry_backoff:
        given["retry_backoff"] = float(task.retry_backoff or 1.0)
    if task.timeout != cls.default_timeout:
        given["timeout"] = float(task.timeout or 0)
    return Budget(**given) if given else None


# -- the Task a record stands for --------------------------------------------------------------


def stored_call(huey: Huey, payload: bytes) -> Decoded | None:
    """What a stored payload holds; None when it cannot be read here."""
    try:
        return huey.app.decode_stored(payload)
    except (DecodeError, ValueError, TypeError):
        return None


def huey_task(
    huey: Huey,
    name: str,
    task_id: str,
    call: Decoded | None,
    errors: int,
    *,
    eta: float | None = None,
    priority: int | None = None,
) -> Task:
    """The Huey Task of a stored task after `errors` failed attempts: `retries` left, the
    `retry_delay` its backoff grew to, its own `timeout`, `expires_resolved`."""
    wrapper = huey.wrappers.get(name)
    cls = wrapper.task_class if wrapper is not None else Task
    budget = (call.budget if call is not None else None) or Budget()
    total = cls.default_retries if budget.retries is None else budget.retries
    delay = cls.default_retry_delay if budget.retry_delay is None else budget.retry_delay
    backoff = cls.default_retry_backoff if budget.retry_backoff is None else budget.retry_backoff
    args, kwargs = (call.args, dict(call.kwargs)) if call is not None else ((), {})
    task = cls(
        args, kwargs, id=task_id, eta=from_timestamp(eta, huey.utc), priority=priority,
        retries=max(0, total - errors), retry_delay=delay * (backoff or 1) ** errors,
        retry_backoff=backoff,
        timeout=cls.default_timeout if budget.timeout is None else budget.timeout,
    )  # fmt: skip
    if wrapper is None:
        task.name = name
    if call is not None and call.expires is not None:
        task.expires_resolved = from_timestamp(call.expires, huey.utc)
    return task


def task_of_record(huey: Huey, info: TaskInfo) -> Task:
    """A stored task as `pending()` and `scheduled()` list it."""
    call = stored_call(huey, info.payload)
    return huey_task(huey, info.name, info.id, call, info.errors, eta=info.eta,
                     priority=info.priority)  # fmt: skip


# -- the error a failure left ------------------------------------------------------------------


def note_error(exc: BaseException, *, final: bool = False) -> None:
    """Mark a failure Huey surfaces with its repr (stored with its traceback): any but a
    retrying exception's, unless it is `final` (no retry follows)."""
    if (isinstance(exc, RETRYING_EXCEPTIONS) and not final) or not hasattr(exc, "add_note"):
        return
    if not any(str(n).startswith(ERROR_NOTE) for n in getattr(exc, "__notes__", ())):
        exc.add_note(f"{ERROR_NOTE}{error_repr(exc)}")


def error_repr(exc: BaseException) -> str:
    """What Huey's metadata['error'] says of `exc`: its repr, or for a TaskException (a
    task's failure re-raised by its Result) the failure's own."""
    if isinstance(exc, TaskException):
        return str(exc.metadata.get("error") or repr(exc))
    return repr(exc)


class StoredError(Exception):
    """A failure read back from storage: its repr is the one the task raised, its
    `traceback` the stored one."""

    def __init__(self, text: str, traceback: str) -> None:
        super().__init__(text)
        self.text, self.traceback = text, traceback

    def __repr__(self) -> str:
        return self.text


def stored_error(huey: Huey, info: TaskInfo) -> tuple[Task, StoredError] | None:
    """The failure a Result of `info` raises, with the Task as it was when it failed; None
    when there is none to surface (a live task whose last attempt did not fail, a failure
    of RetryTask, a lock or a rate limit while a retry is pending, or any failure while
    `store_intermediate_errors` is off)."""
    wrapper = huey.wrappers.get(info.name)
    if not huey.results or (wrapper is not None and issubclass(wrapper.task_class, PeriodicTask)):
        return None  # Huey stores no error of these
    last = info.history[-1] if info.history else {}
    detail = str(last.get("detail") or "")
    text: str | None
    if info.state is State.DEAD and info.reason in NO_RESULT_REASONS:
        return None
    if info.state is State.DEAD:
        text = _noted(info.error or detail) or _last_line(info.error) or info.reason or "error"
        errors_before = max(0, info.errors - 1) if info.reason == "error" else None
    elif info.state in LIVE and huey.store_intermediate_errors:
        failed = last.get("outcome") == "error"
        text = _noted(info.error or "") or _noted(detail) if failed else _noted(detail)
        if text is None:
            return None
        errors_before = info.errors - 1 if failed else info.errors
    else:
        return None
    task = huey_task(huey, info.name, info.id, stored_call(huey, info.payload),
                     errors_before or 0, eta=info.eta, priority=info.priority)  # fmt: skip
    if errors_before is None:  # canceled: not retried
        task.retries = 0
    elif info.state in LIVE and last.get("outcome") != "error":  # CancelExecution(retry=True)
        task.retries = max(task.retries, 1)
    return task, StoredError(text, info.error or detail)


def failure_key(info: TaskInfo) -> tuple[str, int]:
    """Names one failure of a task (its id and the attempt that failed): read once, it is no
    longer counted by `result_count()`."""
    return info.id, info.attempts


def unread_failure(huey: Huey, info: TaskInfo) -> bool:
    """Whether `info` holds a failure a Result would raise that no Result of this app read."""
    return failure_key(info) not in huey._errors_read and stored_error(huey, info) is not None


def _noted(text: str) -> str | None:
    found = [line for line in text.splitlines() if ERROR_NOTE in line]
    return found[-1].partition(ERROR_NOTE)[2] if found else None


def _last_line(text: str | None) -> str | None:
    lines = (text or "").strip().splitlines()
    return lines[-1] if lines else None


def is_after(moment: dt.datetime | None, limit: float | None, utc: bool) -> bool:
    """Whether `moment` (a Huey timestamp) is past `limit` (seconds since the epoch)."""
    if moment is None or limit is None:
        return False
    limit_at = from_timestamp(limit, utc)
    return limit_at is not None and moment > limit_at
