"""What the storage contract says of locks and limits (`Storage.locks`, `Storage.set_limits`,
`Storage.limit_states`); `scoter.storage.base` re-exports them."""

from __future__ import annotations

from dataclasses import dataclass

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
