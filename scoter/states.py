"""The lifecycle of a task: every state, and who moves tasks in and out of it."""

from __future__ import annotations

import enum


class State(str, enum.Enum):
    """Where a task is in its lifecycle. Stored as the lowercase string value."""

    # In: enqueue with an eta or delay; a retry with backoff.
    # Out: the scheduler promotes it to `queued` once due.
    SCHEDULED = "scheduled"
    # In: enqueue; release by a stopping consumer; rescue of an expired lease.
    # Out: a consumer's claim moves it to `running`.
    QUEUED = "queued"
    # In: a claim, which records the attempt and issues a lease token.
    # Out: ack → `done`; error → `scheduled` or `dead`; release → `queued`; lease expiry → rescue.
    RUNNING = "running"
    # In: ack, with the result when results are kept.
    # Out: expiry of the result TTL, or a purge.
    DONE = "done"
    # In: a budget exhausted, a payload that does not decode, an unknown task name, a stored
    # record that is corrupt (reason CORRUPT), a revocation (REVOKED), an expiry (EXPIRED).
    # Out: an operator's retry (→ `queued`), a restore of a revoked task, or a purge.
    DEAD = "dead"

    def __str__(self) -> str:
        return self.value


CORRUPT = "corrupt"
"""The dead reason of a task whose stored record is corrupt: a field of the wrong type, out of
range, missing or unreadable (DESIGN G11). Its error says which, and what to do."""

REVOKED = "revoked"
"""The dead reason of a revoked task: revoked while scheduled or queued (it never started), or
while running (it ended when it stopped). `restore` queues it again."""
EXPIRED = "expired"
"""The dead reason of a task not started before its `expires` time (or whose retry would have
started after it)."""

LIVE_STATES = (State.SCHEDULED, State.QUEUED, State.RUNNING)
FINAL_STATES = (State.DONE, State.DEAD)
