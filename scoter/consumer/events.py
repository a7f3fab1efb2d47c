"""Task lifecycle events: the one place where a consumer reports what happens to each task.

The supervisor, the settler's policy, the rescuer and an attempt's start (`TaskContext.begin`)
each call `Events.emit` once per event; observers — the log (`LogObserver`), Prometheus
metrics (`scoter.contrib.prometheus`), your own — receive a `TaskEvent`. An event nobody
observes costs a dictionary look-up and, for the outcomes, a counter under a lock: no event is
built.

Every event is emitted in the consumer's own process, whatever the executor: a process
executor's child only runs the task, and its parent settles the outcome and reports it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from typing import TYPE_CHECKING, NamedTuple, Protocol

from scoter.display import printable

if TYPE_CHECKING:
    from scoter.context import TaskContext
    from scoter.storage.base import Rescued

log = logging.getLogger("scoter.consumer")
task_log = logging.getLogger("scoter.tasks")
"""The logger of the per-task lines: silence them alone with its level."""

RECEIVED = "received"
"""Claimed by this consumer (it may wait for a free worker: prefetch, a suspect's turn)."""
STARTED = "started"
"""Its worker starts the attempt."""
SUCCEEDED = "succeeded"
"""The task returned and its ack landed. `duration`: seconds the task's code ran."""
ERROR = "error"
"""The task raised (a retried or dead event follows). `duration`, `detail`: the error."""
RETRIED = "retried"
"""After an error, scheduled again. `delay`: seconds until then; `detail`: the error."""
INTERRUPTED = "interrupted"
"""Handed back unfinished (shutdown, `Interrupt`): queued again. `detail`: why."""
CRASHED = "crashed"
"""Its attempt died with its process (or the holder's lease expired unreleased): queued
again or dead. `detail`: how, and the crash count."""
LEASE_LOST = "lease_lost"
"""The attempt lost its lease (its writes are refused). `reason`: what found it, `heartbeat`,
`fence` or the refused write (`ack`, `retry`, ...)."""
DEAD = "dead"
"""Ended in the dead-letter state. `reason`: error, crashed, interrupted, unknown task, ..."""
EXPIRED = "expired"
"""Ended dead because it expired before it could run (dead reason `expired`)."""
REVOKED = "revoked"
"""Ended dead because it was revoked (dead reason `revoked`)."""

OUTCOMES = (
    SUCCEEDED, ERROR, RETRIED, INTERRUPTED, CRASHED, DEAD, LEASE_LOST, EXPIRED, REVOKED,
)  # fmt: skip
"""The events that say how an attempt (or a task) ended: counted per consumer."""
KINDS = (RECEIVED, STARTED, *OUTCOMES)

LEVELS = {
    RECEIVED: logging.DEBUG,
    STARTED: logging.DEBUG,
    SUCCEEDED: logging.INFO,
    RETRIED: logging.WARNING,
    INTERRUPTED: logging.WARNING,
    CRASHED: logging.WARNING,
    LEASE_LOST: logging.WARNING,
    DEAD: logging.ERROR,
    EXPIRED: logging.WARNING,
    REVOKED: logging.INFO,
}
"""The level each event is logged at; ERROR is not logged (its retried or dead line says it)."""


class TaskEvent(NamedTuple):
    """One lifecycle event of one task."""

    kind: str
    id: str
    name: str
    queue: str
    """Empty when unknown (a task the rescuer recovered)."""
    attempt: int
    """1 on the first run; 0 when unknown."""
    duration: float | None = None
    """SUCCEEDED, ERROR: seconds the task's code ran."""
    delay: float | None = None
    """RETRIED: seconds until the next attempt."""
    reason: str = ""
    """DEAD: the dead reason; LEASE_LOST: what found it; CRASHED: `rescued` when the rescuer
    recovered it."""
    detail: str = ""
    """The error's summary, the release's or crash's description."""
    errors: int = 0
    """Errors of earlier attempts (the `retries` budget spent before this attempt)."""
    interruptions: int = 0
    crashes: int = 0

    def fields(self) -> dict[str, object]:
        """What a JSON log line carries: the event's fields that are set, durations in ms."""
        fields: dict[str, object] = {"event": self.kind, "task_id": self.id, "task": self.name}
        if self.queue:
            fields.update(queue=self.queue, attempt=self.attempt)
        if self.duration is not None:
            fields["duration_ms"] = round(self.duration * 1000, 3)
        if self.delay is not None:
            fields["delay_s"] = round(self.delay, 3)
        for name in ("reason", "detail"):
            if value := getattr(self, name):
                fields[name] = value
        fields.update(errors=self.errors, interruptions=self.interruptions, crashes=self.crashes)
        return fields


class Observer(Protocol):
    """Receives the events of `kinds`. `observe` runs on the consumer's threads: keep it
    short; whatever it raises is logged and never disturbs the task or the consumer."""

    kinds: frozenset[str]

    def observe(self, event: TaskEvent) -> None: ...


class Events:
    """The observers of one consumer, by event kind, and its count of each outcome."""

    def __init__(self, observers: Iterable[Observer] = ()) -> None:
        self._by_kind: dict[str, tuple[Observer, ...]] = {}
        self._lock = threading.Lock()
        self.counts: dict[str, int] = dict.fromkeys(OUTCOMES, 0)
        """How many of each outcome this consumer saw."""
        for observer in observers:
            self.add(observer)

    def add(self, observer: Observer) -> None:
        """Send `observer` the events of its kinds from now on."""
        unknown = set(observer.kinds) - set(KINDS)
        if unknown:
            raise ValueError(f"unknown event kind(s) {sorted(unknown)}; known: {KINDS}")
        with self._lock:
            for kind in observer.kinds:
                self._by_kind[kind] = (*self._by_kind.get(kind, ()), observer)

    def wants(self, kind: str) -> bool:
        """Whether an observer listens for `kind`."""
        return kind in self._by_kind

    def emit(
        self,
        kind: str,
        ctx: TaskContext,
        *,
        duration: float | None = None,
        delay: float | None = None,
        reason: str = "",
        detail: str = "",
    ) -> None:
        """Report `kind` for the attempt `ctx`."""
        if kind in self.counts:
            with self._lock:
                self.counts[kind] += 1
        observers = self._by_kind.get(kind)
        if observers:
            lease = ctx.lease
            event = TaskEvent(
                kind, lease.id, lease.name, lease.queue, lease.attempt, duration, delay, reason,
                detail, lease.errors, lease.interruptions, lease.crashes,
            )  # fmt: skip
            self._send(observers, event)

    def emit_rescued(self, kind: str, rescued: Rescued, detail: str) -> None:
        """Report `kind` (CRASHED, DEAD) for a task the rescuer recovered: its holder is gone,
        so its queue and attempt are not known here."""
        with self._lock:
            self.counts[kind] += 1
        observers = self._by_kind.get(kind)
        if observers:
            reason = "rescued" if kind == CRASHED else "crashed"
            event = TaskEvent(kind, rescued.id, rescued.name, "", 0, reason=reason,
                              detail=detail, crashes=rescued.crashes)  # fmt: skip
            self._send(observers, event)

    def started(self, ctx: TaskContext) -> None:
        """`TaskContext.begin`'s hook: the attempt starts."""
        self.emit(STARTED, ctx)

    @staticmethod
    def _send(observers: tuple[Observer, ...], event: TaskEvent) -> None:
        for observer in observers:
            try:
                observer.observe(event)
            except Exception:
                log.exception("event observer %r failed on %s of task %s", observer,
                              event.kind, printable(event.id))  # fmt: skip


class LogObserver:
    """Logs each event to `scoter.tasks` at its level (LEVELS): one line, the task's id and
    name escaped (scoter.display), its attempt and queue; JSON logs get the fields too
    (`record.task_event`, see scoter.display.JsonFormatter)."""

    def __init__(self, logger: logging.Logger = task_log) -> None:
        """Listens for the kinds whose level `logger` logs now."""
        self.log = logger
        self.kinds = frozenset(k for k, lvl in LEVELS.items() if logger.isEnabledFor(lvl))

    def observe(self, event: TaskEvent) -> None:
        where = f" [attempt {event.attempt}, queue {printable(event.queue)}]" if event.queue else ""
        self.log.log(
            LEVELS[event.kind], "task %s (%s) %s%s", printable(event.id), printable(event.name),
            describe(event), where, extra={"task_event": event},
        )  # fmt: skip


def describe(event: TaskEvent) -> str:
    """What happened, in words: `succeeded in 12.3 ms`, `failed, retrying in 2.0 s: ...`."""
    kind, detail = event.kind, printable(event.detail)
    if kind == SUCCEEDED:
        ms = (event.duration or 0.0) * 1000
        return f"succeeded in {ms:.1f} ms" if ms >= 1 else f"succeeded in {ms:.3f} ms"
    if kind == RETRIED:
        return f"failed, retrying in {event.delay or 0.0:.1f} s: {detail}"
    if kind == INTERRUPTED:
        return f"interrupted, queued again: {detail}"
    if kind == CRASHED:
        return f"crashed: {detail}"
    if kind == LEASE_LOST:
        return f"lease lost ({printable(event.reason)}): {detail}"
    if kind == DEAD:
        return f"dead ({printable(event.reason)}): {detail}"
    return f"{kind}: {detail}" if detail else kind
