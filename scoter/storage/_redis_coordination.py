"""Unique keys, locks and limits of the Redis storage: one script each (enqueue_unique.lua,
lock_*.lua, locks.lua, limits_set.lua, limit_states.lua, take_rate.lua; claims under limits
are claim_limited in lib.lua). Their keys are the namespace's own, not a queue's: on a Redis
Cluster they need the prefix's hash tag, as the directory does (docs/redis.md)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from scoter.storage._limits import rate_key, state
from scoter.storage.base import Lease, NewTask
from scoter.storage.coordination import LimitState, LockInfo, TaskLimit

US = 1_000_000


class RedisCoordination:
    """The coordination steps of `RedisStorage`, which mixes this in."""

    client: Any
    prefix: str
    _ids: str
    _queues: str

    if TYPE_CHECKING:

        def _call(self, script: str, keys: Sequence[str], args: Sequence[Any]) -> Any: ...

        def _bases(self, queues: Sequence[str]) -> list[str]: ...

        def _leases(self, reply: list[Any]) -> list[Lease]: ...

        def _token_prefixes(self, n: int) -> list[str]: ...

    # -- unique tasks ----------------------------------------------------------------------

    def enqueue_unique(
        self, tasks: Sequence[NewTask], *, restart_finished: bool = True
    ) -> list[str]:
        if not tasks:
            return []
        now = time.time()
        args: list[Any] = [int(restart_finished)]
        for t in tasks:
            eta = "" if t.eta is None else _us(t.eta - now)
            args += (t.id, t.name, t.queue, t.payload, t.priority, eta, t.max_crashes,
                     t.unique_key or "")  # fmt: skip
        keys = [self._ids, self._queues, f"{self.prefix}:unique"]
        return [task_id.decode() for task_id in self._call("enqueue_unique", keys, args)]

    # -- locks -----------------------------------------------------------------------------

    def _lock_keys(self, name: str) -> list[str]:
        return [f"{self.prefix}:lock:{name}", f"{self.prefix}:locks"]

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
        ttl_us = "" if ttl is None else _us(ttl)
        args = [name, owner, task_id or "", lease_token or "", ttl_us, holder]
        return int(self._call("lock_acquire", self._lock_keys(name), args)) == 1

    def renew_lock(self, name: str, owner: str, ttl: float) -> bool:
        keys = self._lock_keys(name)[:1]
        return int(self._call("lock_renew", keys, [owner, _us(ttl)])) == 1

    def release_lock(self, name: str, owner: str) -> bool:
        return int(self._call("lock_release", self._lock_keys(name), [name, owner])) == 1

    def locks(self, names: Sequence[str] | None = None) -> list[LockInfo]:
        return self._locks_call("0", names)

    def flush_locks(self, names: Sequence[str] | None = None) -> list[str]:
        return [lock.name for lock in self._locks_call("1", names)]

    def _locks_call(self, flush: str, names: Sequence[str] | None) -> list[LockInfo]:
        if names is not None and not names:
            return []
        r = self._call("locks", [f"{self.prefix}:locks"], [flush, *(names or ())])
        found = [
            LockInfo(r[i].decode(), r[i + 1].decode(), _text(r[i + 2]), _time(r[i + 3]),
                     _time(r[i + 4]) or 0.0)
            for i in range(0, len(r), 5)
        ]  # fmt: skip
        return sorted(found, key=lambda lock: lock.name)

    # -- concurrency and rate limits -------------------------------------------------------

    def set_limits(self, limits: Sequence[TaskLimit]) -> None:
        args: list[Any] = []
        for limit in limits:
            per = "" if limit.per is None else _us(limit.per)
            args += (limit.name, _or_empty(limit.concurrency), _or_empty(limit.rate), per)
        if args:
            self._call("limits_set", [f"{self.prefix}:limits", self._queues], args)

    def claim_ahead(
        self, queues: Sequence[str], n: int, lease_s: float, consumer_id: str
    ) -> list[Lease]:
        if n <= 0 or not queues:
            return []
        args = [n, _us(lease_s), consumer_id, *self._token_prefixes(n)]
        return self._leases(self._call("claim_ahead", self._bases(queues), args))

    def limit_states(self, names: Sequence[str] | None = None) -> list[LimitState]:
        if names is not None and not names:
            return []
        r = self._call("limit_states", [f"{self.prefix}:limits"], list(names or ()))
        states = []
        for i in range(0, len(r), 7):
            name, concurrency, rate, per = (v.decode() for v in r[i : i + 4])
            limit = TaskLimit(name, _int(concurrency), _int(rate), _seconds(per))
            states.append(state(limit, int(r[i + 4]), int(r[i + 5]), _time(r[i + 6])))
        return sorted(states, key=lambda s: s.limit.name)

    def reset_rate(self, key: str) -> None:
        self.client.delete(f"{self.prefix}:starts:{rate_key(key)}")

    def take_rate(self, key: str, limit: int, per: float) -> bool:
        counted = rate_key(key)
        keys = [f"{self.prefix}:starts:{counted}", f"{self.prefix}:starts:seq"]
        return int(self._call("take_rate", keys, [counted, limit, _us(per)])) == 1


def _us(seconds: float) -> int:
    return round(seconds * US)


def _or_empty(value: int | None) -> int | str:
    return "" if value is None else value


def _int(text: str) -> int | None:
    return int(text) if text else None


def _seconds(text: str) -> float | None:
    return int(text) / US if text else None


def _text(value: bytes | None) -> str | None:
    return None if value is None else value.decode()


def _time(value: bytes | int | None) -> float | None:
    return None if value is None else int(value) / US
