"""Signal names and the dispatcher. Receivers are called as `receiver(signal, task, *extra)`.

Names match Huey's where the meaning is the same; scoter adds lease and dead-letter signals.
A receiver that raises is logged and never disturbs the task or the consumer.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from scoter.display import printable

log = logging.getLogger("scoter.signals")

SIGNAL_ENQUEUED = "enqueued"
"""A producer stored the task."""
SIGNAL_EXECUTING = "executing"
"""A consumer is about to run the task."""
SIGNAL_COMPLETE = "complete"
"""The task returned and its ack landed. Extra: none."""
SIGNAL_ERROR = "error"
"""The task raised. Extra: the exception."""
SIGNAL_RETRYING = "retrying"
"""After an error, the task is scheduled again. Extra: the exception, the delay (s)."""
SIGNAL_INTERRUPTED = "interrupted"
"""The task was handed back unfinished (shutdown or `Interrupt`); another consumer may take it."""
SIGNAL_LEASE_LOST = "lease-lost"
"""This attempt lost its lease (expired, taken over), or could not renew it in time; its writes
are refused. Extra: what found it: the write refused (`ack`, `retry`, ...), `heartbeat`, or
`fence` (not renewed for nearly a lease: storage unreachable)."""
SIGNAL_RESCUED = "rescued"
"""A crashed holder's expired lease was recovered; the task is queued again or dead."""
SIGNAL_DEAD = "dead"
"""The task ended in the dead-letter state. Extra: the reason."""
SIGNAL_REVOKED = "revoked"
"""The task ended revoked (dead, reason `revoked`), sent where that happened: by the consumer
that found it revoked, or by the caller of a revoke that ended it while it waited."""
SIGNAL_EXPIRED = "expired"
"""The task ended expired (dead, reason `expired`): not started before its `expires` time."""

ALL_SIGNALS = (
    SIGNAL_ENQUEUED, SIGNAL_EXECUTING, SIGNAL_COMPLETE, SIGNAL_ERROR, SIGNAL_RETRYING,
    SIGNAL_INTERRUPTED, SIGNAL_LEASE_LOST, SIGNAL_RESCUED, SIGNAL_DEAD, SIGNAL_REVOKED,
    SIGNAL_EXPIRED,
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class TaskRef:
    """What a receiver learns about the task. `args`/`kwargs` are empty when not decoded."""

    id: str
    name: str
    queue: str
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)
    attempt: int = 0


Receiver = Callable[..., Any]


class Signals:
    """Receivers per signal name; `None` as a name means every signal."""

    def __init__(self) -> None:
        self._receivers: dict[str | None, list[Receiver]] = {}
        self._lock = threading.Lock()

    def connect(self, receiver: Receiver, *names: str) -> None:
        unknown = [n for n in names if n not in ALL_SIGNALS]
        if unknown:
            raise ValueError(f"unknown signal(s) {unknown}; known: {', '.join(ALL_SIGNALS)}")
        with self._lock:
            for name in names or (None,):
                self._receivers.setdefault(name, []).append(receiver)

    def disconnect(self, receiver: Receiver, *names: str) -> None:
        with self._lock:
            keys: tuple[str | None, ...] = names or tuple(self._receivers)
            for name in keys:
                if receiver in self._receivers.get(name, []):
                    self._receivers[name].remove(receiver)

    def __bool__(self) -> bool:
        return any(self._receivers.values())

    def send(self, name: str, task: TaskRef, *extra: Any) -> None:
        receivers = self._receivers.get(name, []) + self._receivers.get(None, [])
        for receiver in receivers:
            try:
                receiver(name, task, *extra)
            except Exception:
                log.exception(
                    "signal receiver %r failed on %s for task %s",
                    receiver,
                    name,
                    printable(task.id),
                )
