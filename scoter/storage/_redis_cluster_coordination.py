"""What a Redis Cluster does without unique keys, locks and limits: they are the namespace's
keys, not a queue's, and a cluster's scripts each keep to one queue's slot. A step that would
need them is refused, saying so; reads find none; claims are plain (no limit is ever stored)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from scoter.exceptions import ConfigurationError
from scoter.storage._limits import limited
from scoter.storage.base import Lease, NewTask
from scoter.storage.coordination import LimitState, LockInfo, TaskLimit

ALTERNATIVES = "a single Redis server (redis://), SQLite or PostgreSQL keep them"


def refused(what: str) -> ConfigurationError:
    return ConfigurationError(f"{what} are not kept on a Redis Cluster yet: {ALTERNATIVES}")


class Uncoordinated:
    """The coordination steps of `RedisClusterStorage`, which mixes this in first."""

    coordination = False

    if TYPE_CHECKING:

        def enqueue(self, tasks: Sequence[NewTask], *, restart_finished: bool = True) -> int: ...

        def claim(
            self, queues: Sequence[str], n: int, lease_s: float, consumer_id: str
        ) -> list[Lease]: ...

    def enqueue_unique(
        self, tasks: Sequence[NewTask], *, restart_finished: bool = True
    ) -> list[str]:
        if any(t.unique_key for t in tasks):
            raise refused("unique tasks")
        self.enqueue(tasks, restart_finished=restart_finished)
        return [t.id for t in tasks]

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
        raise refused("locks")

    def renew_lock(self, name: str, owner: str, ttl: float) -> bool:
        raise refused("locks")

    def release_lock(self, name: str, owner: str) -> bool:
        raise refused("locks")

    def locks(self, names: Sequence[str] | None = None) -> list[LockInfo]:
        return []

    def flush_locks(self, names: Sequence[str] | None = None) -> list[str]:
        return []

    def set_limits(self, limits: Sequence[TaskLimit]) -> None:
        """Nothing to store while no task has a limit (what every consumer stores at start)."""
        if any(limited(limit) for limit in limits):
            raise refused("concurrency and rate limits")

    def limit_states(self, names: Sequence[str] | None = None) -> list[LimitState]:
        return []

    def claim_ahead(
        self, queues: Sequence[str], n: int, lease_s: float, consumer_id: str
    ) -> list[Lease]:
        return self.claim(queues, n, lease_s, consumer_id)

    def take_rate(self, key: str, limit: int, per: float) -> bool:
        raise refused("rate limits")

    def reset_rate(self, key: str) -> None:
        raise refused("rate limits")
