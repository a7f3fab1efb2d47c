"""Revocation with Huey's names: one task by id, or every run of a task name.

By id (`Scoter.revoke_by_id`, `Result.revoke`): one atomic storage step. A scheduled or queued
task goes dead with reason `revoked` at once, so no consumer can start it; a running one keeps
its lease, and its consumer stops it (`ctx.stop_requested`) within REFRESH_S and ends it
revoked however the attempt ends. `restore` undoes either.

By name (`Scoter.revoke_all`, `Task.revoke`): a stored revocation of the name, optionally until
a time or for the next run only. Consumers read the revocations at most REFRESH_S old and end
each run they claim while it holds as dead `revoked` — runs enqueued before the call and after
it; running ones finish. `revoke_once` is taken by one consumer alone (an atomic delete), so
exactly one run is revoked however many consumers race for it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Protocol

from scoter import signals as sig
from scoter.result import Result
from scoter.states import LIVE_STATES, REVOKED, State
from scoter.storage.base import Lease, Revocation, Revocations, Storage
from scoter.task import Task, check_id, check_name
from scoter.times import Moment, to_deadline

BY_ID = "#"
"""Starts the stored revocation of one task id that applies when the task is claimed
(`revoke_when_claimed`); `#` is in no task name, so it never revokes a name."""
REFRESH_S = 0.5
"""How old, at most, a consumer's copy of the revocations is (see consumer/revocations.py)."""
WHILE_RUNNING = "revoked while it ran"


class _App(Protocol):
    """What these methods use of Scoter."""

    signals: sig.Signals

    @property
    def storage(self) -> Storage: ...


class Revoking:
    """The revocation methods of `Scoter` (Huey's names)."""

    def revoke_by_id(self: _App, task_id: str) -> State | None:
        """Revoke one task: scheduled or queued, it is dead `revoked` at once and never
        starts; running, it sees `ctx.stop_requested` and ends revoked. Returns the state it
        was in; None when it was not live. Undo: `restore_by_id`."""
        state = self.storage.revoke([check_id(task_id)]).get(task_id)
        if state in (State.SCHEDULED, State.QUEUED) and self.signals:
            info = self.storage.get(task_id)
            if info is not None:
                ref = sig.TaskRef(task_id, info.name, info.queue)
                self.signals.send(sig.SIGNAL_REVOKED, ref)
        return state

    def revoke_when_claimed(
        self: _App,
        task_id: str,
        revoke_until: Moment | None = None,
        revoke_once: bool = False,
    ) -> None:
        """Revoke task `task_id` as Huey does: it stays stored as it is, and each claim of it
        ends it dead `revoked` instead of running it — until `restore_by_id`, until
        `revoke_until`, or for the next claim only (`revoke_once`); a running attempt
        finishes. The revocation outlives the task (an id enqueued again is revoked too)."""
        until = to_deadline("revoke_until", revoke_until, time.time())
        self.storage.revoke_task(BY_ID + check_id(task_id), until, bool(revoke_once))

    def restore_by_id(self: _App, task_id: str) -> bool:
        """Undo `revoke_by_id` and `revoke_when_claimed`: a task dead `revoked` is queued
        again (scheduled when its eta is ahead); a running one is no longer stopped, unless
        its consumer already did; later claims run it."""
        lifted = self.storage.restore_task(BY_ID + check_id(task_id))
        return self.storage.restore([task_id]) > 0 or lifted

    def revoke_all(
        self: _App,
        task: Task[Any, Any] | str,
        revoke_until: Moment | None = None,
        revoke_once: bool = False,
    ) -> None:
        """Revoke every run of `task` (a Task or a task name) not started yet, and those
        enqueued later, until `restore_all` — or until `revoke_until` (seconds or timedelta
        from now, or a datetime), or the next run only (`revoke_once`). Running ones finish."""
        until = to_deadline("revoke_until", revoke_until, time.time())
        self.storage.revoke_task(_name(task), until, bool(revoke_once))

    def restore_all(self: _App, task: Task[Any, Any] | str) -> bool:
        """Lift the revocation of `task`'s name; True if there was one. Runs it already ended
        stay dead `revoked` (restore them by id)."""
        return self.storage.restore_task(_name(task))

    def is_revoked(
        self: _App, target: Task[Any, Any] | Result[Any] | str, timestamp: float | None = None
    ) -> bool:
        """A Task: whether its runs claimed now (or at `timestamp`) are revoked. A Result or a
        task id: whether that task ended revoked, or runs and is being revoked."""
        if isinstance(target, Task):
            revocation = self.storage.revocations().names.get(target.name)
            return _holds(revocation, time.time() if timestamp is None else timestamp)
        task_id = target.id if isinstance(target, Result) else check_id(target)
        at = time.time() if timestamp is None else timestamp
        if _holds(self.storage.revocations().names.get(BY_ID + task_id), at):
            return True
        info = self.storage.get(task_id)
        if info is None:
            return False
        if info.state is State.DEAD:
            return info.reason == REVOKED
        return info.state in LIVE_STATES and task_id in self.storage.revocations().ids


def revoked_because(
    known: Revocations, lease: Lease, claimed_at: float, take: Callable[[str], bool]
) -> str | None:
    """Why the task just claimed (at `claimed_at`, the storage's clock) must end revoked
    without running, by the revocations `known`; None when it may run. A `revoke_once` is
    applied only when `take(name)` took it."""
    if lease.id in known.ids:
        return f"{WHILE_RUNNING} (an earlier attempt)"
    if not known.names:  # most claims: nothing is revoked by name or by id
        return None
    by_id = known.names.get(BY_ID + lease.id)
    if (
        by_id is not None
        and _holds(by_id, claimed_at)
        and (not by_id.once or take(BY_ID + lease.id))
    ):
        return "revoked by id when claimed"
    revocation = known.names.get(lease.name)
    if revocation is None or (revocation.until is not None and claimed_at >= revocation.until):
        return None
    if revocation.once:
        return f"the next run of {lease.name!r} was revoked" if take(lease.name) else None
    if revocation.until is None:
        return f"every run of {lease.name!r} is revoked"
    return f"runs of {lease.name!r} are revoked for {revocation.until - claimed_at:.0f} s more"


def revoked_now(storage: Storage, lease: Lease, lease_s: float) -> str | None:
    """`revoked_because` by the revocations stored now (immediate mode)."""
    claimed_at = lease.expires - lease_s
    return revoked_because(storage.revocations(), lease, claimed_at, storage.take_revocation)


def _holds(revocation: Revocation | None, at: float) -> bool:
    """Whether `revocation` revokes a claim at `at`."""
    return revocation is not None and (revocation.until is None or at < revocation.until)


def _name(task: Task[Any, Any] | str) -> str:
    return task.name if isinstance(task, Task) else check_name("task", task)
