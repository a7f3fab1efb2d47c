"""Unique keys, locks and limits of the memory storage: under its one lock, as every step."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from scoter.states import LIVE_STATES
from scoter.storage._limits import allowances, limited, rate_key, state
from scoter.storage.coordination import LimitState, LockInfo, TaskLimit

if TYPE_CHECKING:
    from scoter.storage.base import NewTask
    from scoter.storage.memory import _Row


@dataclass(slots=True)
class _Lock:
    owner: str
    task_id: str | None
    lease_token: str | None
    expires: float | None
    holder: str
    acquired_at: float


class MemoryCoordination:
    """The coordination steps of `MemoryStorage`, which mixes this in."""

    _cond: threading.Condition
    _rows: dict[str, _Row]
    _by_token: dict[str, _Row]
    _unique: dict[str, str]
    _locks: dict[str, _Lock]
    _limits: dict[str, TaskLimit]
    _starts: dict[str, list[float]]

    if TYPE_CHECKING:

        def enqueue(self, tasks: Sequence[NewTask], *, restart_finished: bool = True) -> int: ...

    # -- unique tasks ----------------------------------------------------------------------

    def enqueue_unique(
        self, tasks: Sequence[NewTask], *, restart_finished: bool = True
    ) -> list[str]:
        ids = []
        with self._cond:
            for task in tasks:
                key = task.unique_key
                holder = self._unique_holder(key) if key else None
                if holder is not None:
                    ids.append(holder)
                    continue
                self.enqueue([task], restart_finished=restart_finished)
                if key and self._rows[task.id].task is task:
                    self._unique[key] = task.id
                ids.append(task.id)
        return ids

    def _unique_holder(self, key: str) -> str | None:
        task_id = self._unique.get(key)
        row = None if task_id is None else self._rows.get(task_id)
        if row is None or row.state not in LIVE_STATES or row.task.unique_key != key:
            return None
        return row.task.id

    # -- locks -----------------------------------------------------------------------------

    def acquire_lock(
        self,
        name: str,
        owner: str,
        *,
        ttl: float | None,
        task_id: str | None = None,
        lease_token: str | None = None,
        holder: str = "",
    ) -> bool:
        now = time.time()
        with self._cond:
            if self._held(name, now) is not None:
                return False
            expires = None if ttl is None else now + ttl
            lock = _Lock(owner, task_id, lease_token, expires, holder, now)
            self._locks[name] = lock
            if self._held(name, now) is lock:  # under a lease that lives
                return True
            del self._locks[name]
            return False

    def _held(self, name: str, now: float) -> _Lock | None:
        """Lock `name` if it is held at `now` (see `Storage.acquire_lock`)."""
        lock = self._locks.get(name)
        if lock is None or (lock.expires is not None and lock.expires < now):
            return None
        if lock.task_id is None:
            return lock
        row = self._by_token.get(lock.lease_token or "")
        alive = row is not None and row.task.id == lock.task_id
        return lock if alive and row and (row.lease_expires or 0.0) >= now else None

    def renew_lock(self, name: str, owner: str, ttl: float) -> bool:
        now = time.time()
        with self._cond:
            lock = self._held(name, now)
            if lock is None or lock.owner != owner:
                return False
            lock.expires = now + ttl
            return True

    def release_lock(self, name: str, owner: str) -> bool:
        with self._cond:
            lock = self._locks.get(name)
            if lock is None or lock.owner != owner:
                return False
            held = self._held(name, time.time()) is lock
            del self._locks[name]
            return held

    def locks(self, names: Sequence[str] | None = None) -> list[LockInfo]:
        now = time.time()
        with self._cond:
            found = []
            for name in sorted(self._locks if names is None else set(names)):
                lock = self._held(name, now)
                if lock is not None:
                    found.append(self._lock_info(name, lock))
            return found

    def _lock_info(self, name: str, lock: _Lock) -> LockInfo:
        expires = lock.expires
        row = self._by_token.get(lock.lease_token or "") if lock.task_id else None
        if row is not None and row.lease_expires is not None:
            expires = row.lease_expires if expires is None else min(expires, row.lease_expires)
        return LockInfo(name, lock.holder, lock.task_id, expires, lock.acquired_at)

    def flush_locks(self, names: Sequence[str] | None = None) -> list[str]:
        now = time.time()
        with self._cond:
            held = []
            for name in list(self._locks if names is None else dict.fromkeys(names)):
                if self._held(name, now) is not None:
                    held.append(name)
                self._locks.pop(name, None)
            return sorted(held)

    # -- concurrency and rate limits -------------------------------------------------------

    def set_limits(self, limits: Sequence[TaskLimit]) -> None:
        with self._cond:
            for limit in limits:
                if limited(limit):
                    self._limits[limit.name] = limit
                else:
                    self._limits.pop(limit.name, None)
            self._cond.notify_all()

    def limit_states(self, names: Sequence[str] | None = None) -> list[LimitState]:
        now = time.time()
        with self._cond:
            wanted = sorted(self._limits if names is None else set(names) & set(self._limits))
            return [self._limit_state(self._limits[name], now) for name in wanted]

    def _limit_state(self, limit: TaskLimit, now: float) -> LimitState:
        running = sum(row.task.name == limit.name for row in self._by_token.values())
        starts = self._recent(limit.name, limit.per or 0.0, now)
        return state(limit, running, len(starts), starts[0] if starts else None)

    def _recent(self, key: str, per: float, now: float) -> list[float]:
        """The uses of `key` in the `per` seconds before `now`, oldest first (older ones go)."""
        starts = [at for at in self._starts.get(key, ()) if at > now - per]
        self._starts[key] = starts
        return starts

    def _within_limits(self, ready: list[_Row], n: int, now: float) -> list[_Row]:
        """The first `n` of `ready` (in claim order) that the limits let start now; counts
        their starts."""
        states = [self._limit_state(limit, now) for limit in self._limits.values()]
        allowed = allowances(states)
        chosen: list[_Row] = []
        for row in ready:
            if len(chosen) >= n:
                break
            name = row.task.name
            left = allowed.get(name)
            if left is None or left > 0:
                chosen.append(row)
            if left:
                allowed[name] = left - 1
                if self._limits[name].rate is not None:
                    self._starts.setdefault(name, []).append(now)
        return chosen

    def reset_rate(self, key: str) -> None:
        with self._cond:
            self._starts.pop(rate_key(key), None)

    def take_rate(self, key: str, limit: int, per: float) -> bool:
        now = time.time()
        with self._cond:
            starts = self._recent(rate_key(key), per, now)
            if len(starts) >= limit:
                return False
            starts.append(now)
            return True
