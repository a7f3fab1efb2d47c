"""TaskContext: what a running task can ask of scoter (its id, attempt, stop requests, progress)."""

from __future__ import annotations

import contextvars
import datetime as dt
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, TypeVar

from scoter.exceptions import ConfigurationError, Interrupt, LeaseLost
from scoter.periodic import slot_of
from scoter.serializers import CHECKPOINT, RESULT, seal, unseal
from scoter.storage.outages import through_outages, within

if TYPE_CHECKING:
    from psycopg import Connection

    from scoter.flows_wire import StepFlow
    from scoter.retry import Budget
    from scoter.serializers import Serializer, Signer
    from scoter.signals import TaskRef
    from scoter.storage.base import Lease, Storage

_current: contextvars.ContextVar[TaskContext | None] = contextvars.ContextVar(
    "scoter_task_context", default=None
)


_UNREAD = object()
_NO_HEADERS: Mapping[str, str] = MappingProxyType({})
T = TypeVar("T")

PENDING = "pending"
RUNNING = "running"
SETTLING = "settling"
TAKEN_BACK = "taken back"
_phases = threading.Lock()


class TaskContext:
    """Handed to tasks declared with `context=True` as the `ctx` keyword argument."""

    def __init__(
        self,
        lease: Lease,
        storage: Storage,
        serializer: Serializer,
        timeout: float | None = None,
        *,
        signer: Signer | None = None,
    ) -> None:
        self._lease = lease
        self._storage = storage
        self._serializer = serializer
        self._signer = signer
        self._stop_requested = False
        self._stop_event: threading.Event | None = None  # made by the first wait_for_stop
        self.lease_lost = False
        """True once this attempt no longer holds its lease; its writes are refused."""
        self.timed_out = False
        """True once the attempt ran past its task's `timeout`."""
        self._timeout = timeout
        self.deadline: float | None = None
        """When the time limit runs out (time.monotonic(), from `begin()`), or None."""
        self.settled = False
        """True once a settling write of this attempt (ack, retry, release, dead) went out."""
        self.renewed_at = time.monotonic()
        """When this attempt's lease last had its full length ahead (time.monotonic(), taken
        before the claim or heartbeat that granted it): the fence counts from here."""
        self.give_up_at: float | None = None
        """When a consumer that must exit stops retrying this attempt's writes."""
        self.ref: TaskRef | None = None
        """The task as signal receivers see it, with its arguments once decoded."""
        self.expires: float | None = None
        """The task's expiry (seconds since the epoch) once decoded; None: none."""
        self.budget: Budget | None = None
        """The message's own retries, retry delays and time limit once decoded (None: its
        task's)."""
        self.revoked: str | None = None
        """Why the task is revoked, once its consumer found it revoked while it ran: the
        attempt is asked to stop and, however it ends, the task ends dead `revoked`."""
        self._checkpoint: Any = _UNREAD
        self._headers = _NO_HEADERS
        self._phase = PENDING
        self.flow: StepFlow | None = None
        """The pipeline or chord this attempt's task is a step of, once decoded."""

    on_begin: Callable[[TaskContext], None] | None = None
    """Called by `begin()` when the attempt starts (the consumer's STARTED event), if set."""

    # -- who ends the attempt: its worker, or the consumer at the drain deadline -----------

    def _move(self, allowed: tuple[str, ...], to: str) -> str | None:
        with _phases:
            was = self._phase
            if was not in allowed:
                return None
            self._phase = to
            return was

    def begin(self) -> bool:
        """The worker starts the attempt; False when the consumer took it back first."""
        if self._move((PENDING,), RUNNING) is None:
            return False
        if self._timeout is not None:
            self.deadline = time.monotonic() + self._timeout
        if self.on_begin is not None:
            self.on_begin(self)
        return True

    @property
    def running(self) -> bool:
        """True from `begin()` until its worker settles the outcome (or it is taken back)."""
        return self._phase == RUNNING

    def begin_settling(self) -> bool:
        """The worker settles the outcome; False when the consumer took it back first."""
        return self._move((PENDING, RUNNING), SETTLING) is not None

    @property
    def settling(self) -> bool:
        """True while its worker writes its outcome: a refusal of that write is the news of a
        lost lease, not the heartbeat's."""
        return self._phase == SETTLING

    def take_back(self, *, unstarted_only: bool = False) -> str | None:
        """The consumer hands the attempt back (drain deadline): the phase it was in,
        PENDING or RUNNING; None when its worker is already settling it (or, with
        `unstarted_only`, running it)."""
        return self._move((PENDING,) if unstarted_only else (PENDING, RUNNING), TAKEN_BACK)

    def given_up(self) -> bool:
        """Whether a consumer that must exit has stopped retrying this attempt's writes."""
        return self.give_up_at is not None and time.monotonic() >= self.give_up_at

    @property
    def timeout(self) -> float | None:
        """The attempt's time limit in seconds (the message's own, else its task's), or None."""
        return self._timeout

    def limit_time(self, timeout: float) -> None:
        """Set by the consumer when the decoded message has its own time limit (0: none): it
        replaces the task's, counted from when the attempt began."""
        with _phases:
            if not timeout:
                self.deadline, self._timeout = None, None
                return
            if self.deadline is not None and self._timeout is not None:
                self.deadline += timeout - self._timeout
            elif self._phase == RUNNING:
                self.deadline = time.monotonic() + timeout
            self._timeout = timeout

    @property
    def task_id(self) -> str:
        return self._lease.id

    @property
    def task_name(self) -> str:
        return self._lease.name

    @property
    def headers(self) -> Mapping[str, str]:
        """The message's headers as its producer enqueued them (`Message.headers`: trace
        context, tenant, ...), read-only; signed with the message when signing is on."""
        return self._headers

    def set_headers(self, headers: Mapping[str, str]) -> None:
        """Set by the consumer when it decodes the message."""
        self._headers = MappingProxyType(dict(headers))

    @property
    def scheduled_for(self) -> dt.datetime | None:
        """The slot this run of a periodic task is for (an aware UTC datetime); None for a
        task that no schedule enqueued."""
        return slot_of(self._lease.name, self._lease.id)

    @property
    def attempt(self) -> int:
        """1 on the first run; every claim counts, whatever ended the previous attempt."""
        return self._lease.attempt

    @property
    def token(self) -> str:
        """The lease token that fences this attempt's writes."""
        return self._lease.token

    @property
    def stop_requested(self) -> bool:
        """True when the consumer is stopping or the lease was lost: checkpoint and return."""
        return self._stop_requested

    def request_stop(self) -> None:
        with _phases:
            self._stop_requested = True
            event = self._stop_event
        if event is not None:
            event.set()

    def time_out(self) -> None:
        """The time limit ran out: ask the task to stop; the attempt counts as timed out."""
        self.timed_out = True
        self.request_stop()

    def wait_for_stop(self, timeout: float) -> bool:
        """Sleep up to `timeout` seconds, waking early when a stop is requested."""
        with _phases:
            if self._stop_requested:
                return True
            event = self._stop_event = self._stop_event or threading.Event()
        return event.wait(timeout)

    @property
    def checkpoint_state(self) -> Any:
        """What the last `checkpoint()` of any attempt of this task stored, or None.

        With signing on, raises DecodeError — failing the attempt as an error — when the stored
        checkpoint was not signed as this task's: nothing of it is decoded.
        """
        if self._checkpoint is _UNREAD:
            stored = self._lease.checkpoint
            self._checkpoint = None if stored is None else self._decode(stored, CHECKPOINT)
        return self._checkpoint

    def _encode(self, value: Any, kind: bytes) -> bytes:
        return seal(self._serializer, self._signer, value, kind, self.task_id)

    def _decode(self, data: bytes, kind: bytes) -> Any:
        return unseal(self._serializer, self._signer, data, kind, self.task_id)

    def checkpoint(self, state: Any) -> None:
        """Store progress atomically, fenced by this attempt's lease.

        Raises LeaseLost when another consumer owns the task now: stop working.
        """
        data = self._encode(state, CHECKPOINT)
        if not self._fenced_write("checkpoint", lambda: self._storage.checkpoint(self.token, data)):
            self.lease_lost = True
            self.request_stop()
            raise LeaseLost(f"task {self.task_id}: lease lost, checkpoint refused")
        self._checkpoint = state

    def _fenced_write(self, what: str, write: Callable[[], bool]) -> bool:
        """A write of this attempt, retried through storage outages for as long as the lease
        could still be held (`lease_s`); then the outage is raised, failing the attempt."""
        return through_outages(
            self._storage,
            lambda _retry: write(),
            within(self.lease_s),
            f"task {self.task_id} {what}",
        )

    lease_s: float = 30.0
    """Seconds the consumer holds a lease between renewals: the bound of `_fenced_write`."""

    result_ttl: float | None = None
    """Seconds `complete_in` keeps the result: the app's `result_ttl`, set by the consumer."""

    def complete_in(self, conn: Connection[Any], result: Any = None) -> None:
        """Mark the task done inside the caller's transaction on `conn` (PostgreSQL storage).

        The task's own writes and its completion then commit together or not at all: an
        effect exactly once, on top of at-least-once delivery. Fenced by the lease: raises
        LeaseLost when another attempt owns the task now — call it last inside
        `with conn.transaction():`, so that the exception rolls the writes back. The
        transaction must have committed when the task returns; its return value is not stored.
        """
        if self.flow is not None:
            raise ConfigurationError(
                "complete_in cannot end a pipeline or chord step: its ack stores what comes "
                "next, so return the value instead"
            )
        complete_in = getattr(self._storage, "complete_in", None)
        if complete_in is None:
            raise ConfigurationError(
                f"complete_in needs PostgreSQL storage (postgresql://...), not {self._storage.url}"
            )
        data = None if result is None or self.result_ttl == 0 else self._encode(result, RESULT)
        if not complete_in(conn, self._lease.token, data, self.result_ttl):
            self.lease_lost = True
            self.request_stop()
            raise LeaseLost(f"task {self.task_id}: lease lost, complete_in refused")

    @property
    def lease(self) -> Lease:
        return self._lease

    def progress(self, done: int, total: int) -> None:
        """Report progress (shown by `scoter info`). Fenced like checkpoints."""
        if not self._fenced_write(
            "progress", lambda: self._storage.progress(self.token, done, total)
        ):
            self.lease_lost = True
            self.request_stop()
            raise LeaseLost(f"task {self.task_id}: lease lost, progress refused")

    def resume(self, items: Sequence[T], *, every: int = 1) -> Iterator[T]:
        """Iterate over `items`, skipping those a previous attempt finished.

        The position is checkpointed after every `every` items (and progress reported); when
        a stop is requested the position is checkpointed and the task handed back
        (`Interrupt`), to resume at the next item in the next attempt.
        """
        start = self.checkpoint_state or 0
        if not isinstance(start, int):
            raise TypeError("resume() needs the checkpoint to be its own position (an int)")
        for position in range(start, len(items)):
            if self.stop_requested:
                self.checkpoint(position)
                raise Interrupt()
            yield items[position]
            done = position + 1
            if done % every == 0 or done == len(items):
                self.checkpoint(done)
                self.progress(done, len(items))

    def activate(self) -> contextvars.Token[TaskContext | None]:
        """Make this the context `current_context()` returns; reset with the token."""
        return _current.set(self)


def current_context() -> TaskContext | None:
    """The context of the task running in this thread, or None outside a task."""
    return _current.get()


def deactivate(token: contextvars.Token[TaskContext | None]) -> None:
    """Undo `TaskContext.activate`."""
    _current.reset(token)
