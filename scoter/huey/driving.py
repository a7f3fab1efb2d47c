"""Driving Huey tasks by hand, as users' tests do: `huey.dequeue()` claims the next task
and `huey.execute(task, timestamp)` runs it through scoter's attempt and policy (its outcome
stored), as of `timestamp` for its revocation and expiry, as Huey's execute() does.
"""

from __future__ import annotations

import datetime as dt
import time
from typing import TYPE_CHECKING, Any

from scoter.envelope import Decoded
from scoter.exceptions import DecodeError
from scoter.huey import pipelines, records
from scoter.huey import signals as S
from scoter.huey.bridge import _attempts
from scoter.huey.utils import to_timestamp
from scoter.revocation import BY_ID
from scoter.states import EXPIRED, REVOKED

if TYPE_CHECKING:
    from scoter.consumer.attempt import Outcome
    from scoter.context import TaskContext
    from scoter.huey.api import Huey
    from scoter.huey.tasks import Task
    from scoter.storage.base import Lease

DEQUEUE_LEASE_S = 60.0
"""The lease of a task taken by `huey.dequeue()`: nothing renews it."""


def dequeue(huey: Huey) -> Task | None:
    """The next task, claimed for `execute`."""
    lease = _claim(huey)
    if lease is None:
        return None
    try:
        call: Decoded | None = huey.app.decode_claimed(lease)
    except (DecodeError, ValueError):
        call = None
    task = records.huey_task(huey, lease.name, lease.id, call, lease.errors,
                             priority=lease.priority)  # fmt: skip
    huey._dequeued[task.id] = lease
    return task


def _claim(huey: Huey, queues: list[str] | None = None) -> Lease | None:
    app = huey.app
    if queues is None:
        queues = sorted({app.default_queue} | {w.scoter_task.queue for w in huey.wrappers.values()})
    leases = app.storage.claim(queues, 1, DEQUEUE_LEASE_S, "huey-dequeue")
    if not leases and app.storage.promote(time.time()):
        leases = app.storage.claim(queues, 1, DEQUEUE_LEASE_S, "huey-dequeue")
    return leases[0] if leases else None


def execute(huey: Huey, task: Task, timestamp: dt.datetime | None = None) -> Any:
    """Run a dequeued task through scoter's attempt and policy (its outcome is stored), as of
    `timestamp` for its revocation and expiry; any other Task object runs here with the hooks,
    and its value is returned, not stored."""
    lease = huey._dequeued.pop(task.id, None)
    if lease is None:
        return _execute_here(huey, task, timestamp)
    from scoter.consumer.attempt import SUCCEEDED

    ctx, outcome = _run(huey, lease, task, timestamp)
    _run_stand_ins(huey)
    if outcome is None or outcome.kind != SUCCEEDED:
        return None
    ran = _attempts.get(ctx)
    if ran is not None:
        return ran._returned
    return None if outcome.result is None else huey.app.decode_result(outcome.result, task.id)


def _run_stand_ins(huey: Huey) -> None:
    """Count a chord member that went dead down now, as Huey does when it runs the member (its
    stand-in, stored with its death, is on a queue `dequeue` does not take)."""
    queue = [pipelines.stand_in_queue(huey)]
    while (lease := _claim(huey, queue)) is not None:
        _run(huey, lease)


def _run(
    huey: Huey, lease: Lease, task: Task | None = None, timestamp: dt.datetime | None = None
) -> tuple[TaskContext, Outcome | None]:
    """Run a claimed task through scoter's attempt and policy: its context and Outcome (None
    when it ended revoked or expired as of `timestamp` without running)."""
    from scoter.consumer import attempt
    from scoter.consumer.policy import Policy

    app = huey.app
    ctx = attempt.new_context(app, lease, DEQUEUE_LEASE_S)
    policy = Policy(app, "huey-dequeue")
    ended = None if task is None else _ended(huey, task, lease.name, timestamp)
    if ended is not None:
        policy.end(ctx, *ended)
        return ctx, None
    outcome = attempt.execute(app, ctx)
    policy.apply(ctx, outcome)
    return ctx, outcome


def _ended(
    huey: Huey, task: Task, name: str, timestamp: dt.datetime | None
) -> tuple[str, str] | None:
    """(REVOKED or EXPIRED, why) when `task` must not run as of `timestamp` (default now)."""
    at = time.time() if timestamp is None else (to_timestamp(timestamp, huey.utc) or 0.0)
    for key, why in ((BY_ID + task.id, "revoked by id"), (name, f"runs of {name!r} revoked")):
        if _revoked_at(huey, key, at):
            return REVOKED, why
    expires = to_timestamp(task.expires_resolved, huey.utc)
    if expires is not None and at > expires:
        from scoter.consumer.attempt import expired_detail

        return EXPIRED, expired_detail(expires, at, "run")
    return None


def revoked_by_id(huey: Huey, task_id: str, at: float | None) -> bool:
    """Whether task `task_id` is revoked by its id: a claim at `at` (default now) would end
    it revoked, or it runs and is being stopped."""
    known = huey.app.storage.revocations()
    revocation = known.names.get(BY_ID + task_id)
    now = time.time() if at is None else at
    held = revocation is not None and (revocation.until is None or now < revocation.until)
    return held or task_id in known.ids


def _revoked_at(huey: Huey, key: str, at: float) -> bool:
    """Whether the revocation stored under `key` (a task name, or BY_ID and a task id) holds
    at `at`, taking a revoke_once and dropping a revoke_until that has passed, as Huey's
    execute() does."""
    storage = huey.app.storage
    revocation = storage.revocations().names.get(key)
    if revocation is None:
        return False
    if revocation.until is not None and at >= revocation.until:
        storage.restore_task(key)
        return False
    return not revocation.once or storage.take_revocation(key)


def _execute_here(huey: Huey, task: Task, timestamp: dt.datetime | None = None) -> Any:
    if not huey.ready_to_run(task, timestamp):
        huey.enqueue(task)
        return None
    wrapper = type(task).wrapper
    ended = None if wrapper is None else _ended(huey, task, wrapper.scoter_name, timestamp)
    if ended is not None:
        huey._emit(S.SIGNAL_REVOKED if ended[0] == REVOKED else S.SIGNAL_EXPIRED, task)
        return None
    for hook in list(huey._pre_execute.values()):
        hook(task)
    value, error = None, None
    if task.timeout:
        task._deadline = time.monotonic() + task.timeout
    try:
        value = task.execute()
    except Exception as exc:
        error = exc
    for hook in list(huey._post_execute.values()):
        hook(task, value, error)
    if error is not None:
        raise error
    return value
