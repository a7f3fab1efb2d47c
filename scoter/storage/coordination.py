"""The storage contract's steps for unique keys, locks and limits: `Storage` (base.py) derives
from `Coordination`, so every backend implements them; and the records they return."""

from __future__ import annotations

import abc
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from scoter.exceptions import ConfigurationError

if TYPE_CHECKING:
    from scoter.storage.base import Lease, NewTask

LIMITS_REFRESH_S = 1.0
"""How often a backend that keeps it in memory reads again whether any limit is stored."""


@dataclass(frozen=True, slots=True)
class LockInfo:
    """A lock held now."""

    name: str
    holder: str
    """Who holds it, as its acquirer said: a task, or a process."""
    task_id: str | None
    """The task under whose lease it is held; None for a lock taken outside a task."""
    expires: float | None
    """When it is freed unless renewed: its ttl, or its lease's expiry (the heartbeat renews
    the lease); None: never."""
    acquired_at: float


@dataclass(frozen=True, slots=True)
class TaskLimit:
    """The limits of one task name (both None: none)."""

    name: str
    concurrency: int | None = None
    """At most this many of its tasks running at once."""
    rate: int | None = None
    """At most this many claims in any `per` seconds."""
    per: float | None = None


@dataclass(frozen=True, slots=True)
class LimitState:
    """One task name's limits, and how near them it is now."""

    limit: TaskLimit
    running: int
    """Its tasks running now."""
    started: int
    """Its tasks claimed in the last `limit.per` seconds (0 without a rate)."""
    next_start: float | None
    """When the rate lets another task start (seconds since the epoch); None: now."""

    @property
    def at_concurrency(self) -> bool:
        c = self.limit.concurrency
        return c is not None and self.running >= c

    @property
    def at_rate(self) -> bool:
        return self.next_start is not None


class Coordination(abc.ABC):
    """The coordination steps of the storage contract (see `scoter.storage.base.Storage`)."""

    coordination: bool = True
    """Whether it keeps unique keys, locks and limits (a Redis Cluster does not, yet)."""

    # -- unique tasks ----------------------------------------------------------------------

    @abc.abstractmethod
    def enqueue_unique(
        self, tasks: Sequence[NewTask], *, restart_finished: bool = True
    ) -> list[str]:
        """`enqueue`, in one atomic step, except for a task whose `unique_key` a live task
        (scheduled, queued or running) holds: it is not stored. Returns per task the id of the
        live task holding its key: its own when stored (or live already), else the holder's.
        Of tasks of one call sharing a key, the first is stored. Atomic across processes: one
        key, one live task; the key is free once its task is done, dead or purged."""

    # -- locks -----------------------------------------------------------------------------

    @abc.abstractmethod
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
        """Take lock `name` for `owner` (this acquisition's token) unless it is held; returns
        whether `owner` holds it now. Atomic: of callers racing for a free lock, one gets it.

        A lock is held while its `ttl` (seconds; None: no limit, only under a lease) has not
        run out and, when taken under a task's lease (`task_id`, `lease_token`), while its task
        runs with that token and the lease has not expired: the heartbeat renews it with the
        lease, and it is free once the attempt ends or the lease expires. `holder`: who, shown.
        """

    @abc.abstractmethod
    def renew_lock(self, name: str, owner: str, ttl: float) -> bool:
        """Extend lock `name`, held by `owner`, to `ttl` seconds from now. Fenced: False when
        `owner` no longer holds it (its ttl ran out, its lease ended, it was flushed)."""

    @abc.abstractmethod
    def release_lock(self, name: str, owner: str) -> bool:
        """Free lock `name` if `owner` holds it. Fenced: a stale owner frees nothing (False),
        so it cannot free the lock of whoever took it after it."""

    @abc.abstractmethod
    def locks(self, names: Sequence[str] | None = None) -> list[LockInfo]:
        """The locks held now (of `names` when given), by name."""

    @abc.abstractmethod
    def flush_locks(self, names: Sequence[str] | None = None) -> list[str]:
        """Free locks whoever holds them: those of `names`, or every lock when None. Returns
        the names of those that were held, sorted."""

    # -- concurrency and rate limits -------------------------------------------------------

    @abc.abstractmethod
    def set_limits(self, limits: Sequence[TaskLimit]) -> None:
        """Store each task name's limits in one atomic step (a TaskLimit without any removes
        the name's). From then on every call that claims leases a limited name's task only
        within its limits, across every consumer: at most `concurrency` running (an attempt
        counts until it ends or is rescued), at most `rate` claims in any `per` seconds (a
        sliding window); the others stay queued and the claim takes the next it may. A backend
        may take LIMITS_REFRESH_S to see a first limit another process stored: meanwhile its
        claims leave the limited names' tasks queued."""

    @abc.abstractmethod
    def claim_ahead(
        self, queues: Sequence[str], n: int, lease_s: float, consumer_id: str
    ) -> list[Lease]:
        """`claim` for tasks claimed ahead of a free worker (a consumer's prefetch): up to `n`
        queued tasks of names without limits, in claim order, each as `claim` leases it. A
        task of a limited name is left queued, so that it takes its limit's slot or start only
        when a worker can start it. Returns [] when nothing is queued; never blocks."""

    @abc.abstractmethod
    def limit_states(self, names: Sequence[str] | None = None) -> list[LimitState]:
        """The stored limits (of `names` when given), by name, with how near each is now."""

    @abc.abstractmethod
    def take_rate(self, key: str, limit: int, per: float) -> bool:
        """Count one use of `key` unless it was used `limit` times in the last `per` seconds
        (a sliding window); returns whether it counted. Atomic."""

    def reset_rate(self, key: str) -> None:
        """Forget the uses `take_rate` counted of `key`: its window starts empty. Atomic."""
        raise ConfigurationError(f"{type(self).__name__} cannot reset a rate limit")
