"""The storage contract every backend implements.

Operations are named after lifecycle steps (see `scoter.states`). Each one is atomic: it either
happens whole or not at all, even with many consumers in many processes — except the
maintenance steps (`rescue`, `promote`, `expire_results`, `requeue_dead`, `purge`), which work
through any number of tasks in batches of at most `Storage.maintenance_batch`, each batch
atomic on its own, so that no step holds a lock or the server for long. Every write an attempt
makes names its lease token; a token that no longer holds its task's lease is refused and the
method returns False (fencing, DESIGN G3). Policy — retry maths, budgets, signals — lives above
this contract in `scoter.consumer.runner`, so that backends cannot drift apart.

Times are seconds since the epoch (float). Payloads, results and checkpoints are opaque bytes.
Memory and SQLite use this host's clock; a backend with a server (Redis, PostgreSQL) may use the
server's clock for leases and etas instead, so that consumers on many hosts agree.
"""

from __future__ import annotations

import abc
import time
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field, fields
from operator import attrgetter
from typing import TypeVar

from scoter.exceptions import ConfigurationError
from scoter.states import State
from scoter.storage._flows import ChordInfo as ChordInfo
from scoter.storage._flows import Flow as Flow
from scoter.storage._flows import Join as Join
from scoter.storage._flows import with_flows as with_flows
from scoter.storage.batches import BATCH_PAUSE as BATCH_PAUSE
from scoter.storage.batches import MAINTENANCE_BATCH as MAINTENANCE_BATCH
from scoter.storage.batches import Batches
from scoter.storage.coordination import Coordination
from scoter.storage.keyvalue import KeyValue

T = TypeVar("T")

EXPIRED = "lease expired"
"""The history detail of a crash that `rescue` charged."""
SPARED = "lease expired, not charged: its consumer ran other tasks too; it runs alone next"
HANDED_BACK = "handed back"
"""The history outcome of a lease that a claim whose reply was lost gave its consumer, which
never ran it (`Storage.hand_back`)."""
UNSTARTED = "claimed while its consumer was cut off from storage; never started"
"""The history detail of a crash that `rescue` did not charge (see `Storage.rescue`)."""
HISTORY_LIMIT = 20
"""The attempts a task's history keeps: the latest ones (the SQL and Lua of each backend say
20 too)."""

CALL_TIMEOUT_S = 10.0
"""The default deadline of one call to a storage server (Redis, PostgreSQL): how long a call
waits for its reply before it fails as an outage, whatever the client library's defaults."""
CONNECT_TIMEOUT_S = 5.0
"""The default deadline of opening a connection to a storage server."""


@dataclass(frozen=True, slots=True)
class NewTask:
    """A task to store. `eta` in the future makes it `scheduled`, else `queued`."""

    id: str
    name: str
    queue: str
    payload: bytes
    priority: int = 0
    eta: float | None = None
    max_crashes: int = 3
    unique_key: str | None = None
    """While a task holding this key is scheduled, queued or running, `enqueue_unique` stores
    no other task with it (`enqueue` does not look at it)."""

    def __reduce__(self) -> tuple[type[NewTask], tuple[object, ...]]:
        """Pickled as plain fields (a flow step's outcome carries its next step)."""
        return NewTask, _NEW_TASK_FIELDS(self)


_NEW_TASK_FIELDS = attrgetter(*(f.name for f in fields(NewTask)))


@dataclass(frozen=True, slots=True)
class Lease:
    """A claimed task: the right to run it until `expires`, proven by `token`."""

    token: str
    id: str
    name: str
    queue: str
    payload: bytes
    expires: float
    attempt: int
    """1 for the first attempt; counts every claim."""
    errors: int
    interruptions: int
    crashes: int
    checkpoint: bytes | None
    suspect: bool = False
    """A holder of this task died while it ran beside other tasks, so its crash was charged to
    none of them: run it alone (see `Storage.rescue`)."""
    priority: int = 0
    max_crashes: int = 3
    """The record's priority and crash budget as claimed: a signed task's are checked against
    what its producer signed."""

    def __reduce__(self) -> tuple[type[Lease], tuple[object, ...]]:
        """Pickled as plain fields (the process executor sends leases to its children):
        quicker than a dataclass's generic state."""
        return Lease, _LEASE_FIELDS(self)


_LEASE_FIELDS = attrgetter(*(f.name for f in fields(Lease)))


@dataclass(frozen=True, slots=True)
class Ack:
    """One finished attempt to acknowledge: its lease token, result and result TTL."""

    token: str
    result: bytes | None
    result_ttl: float | None
    """Seconds the result is kept; None keeps it forever."""
    flow: Flow | None = None
    """What the ack stores with it when it lands (pipelines and chords); None for most."""


@dataclass(frozen=True, slots=True)
class TaskInfo:
    """Everything stored about one task, for results and inspection."""

    id: str
    name: str
    queue: str
    state: State
    priority: int
    eta: float | None
    attempts: int
    errors: int
    interruptions: int
    crashes: int
    max_crashes: int
    consumer: str | None
    lease_expires: float | None
    result: bytes | None
    error: str | None
    """The last error or dead reason detail (a traceback for errors)."""
    reason: str | None
    """Why the task is dead: `error`, `crashed`, `interrupted`, `undecodable`, `unknown task`,
    `corrupt`."""
    payload: bytes
    created_at: float
    updated_at: float
    history: list[dict[str, object]] = field(default_factory=list)
    """One entry per finished attempt: {"attempt", "outcome", "at", "consumer", "detail"}; the
    latest HISTORY_LIMIT attempts only (the counters count them all)."""
    progress: tuple[int, int] | None = None
    """(done, total) as the running attempt last reported it."""
    suspect: bool = False
    """A holder died while running it beside other tasks (see `Lease.suspect`)."""
    corrupt: str | None = None
    """What of the stored record could not be read, field by field (those fields hold
    stand-ins); None when all of it could. A state that could not be read shows as dead."""


@dataclass(frozen=True, slots=True)
class Rescued:
    """A task whose lease expired with no release: requeued, or dead after `max_crashes`."""

    id: str
    name: str
    state: State
    crashes: int
    charged: bool = True
    """Whether the crash counted against `max_crashes`: False for an attempt that did not run
    alone, which is requeued as a suspect instead."""


@dataclass(frozen=True, slots=True)
class Revocation:
    """The revocation of every task of one name (`Storage.revoke_task`)."""

    until: float | None
    """Tasks claimed before then are revoked (seconds since the epoch); None: until restored."""
    once: bool
    """Only the next task of the name claimed is revoked (`take_revocation`)."""


@dataclass(frozen=True, slots=True)
class Revocations:
    """What consumers must revoke: task names, and tasks revoked by id while they ran."""

    names: dict[str, Revocation] = field(default_factory=dict)
    ids: frozenset[str] = frozenset()
    """Live tasks revoked by id while running: their consumer stops them and ends them
    revoked; one that was requeued meanwhile (a retry, a rescue) is revoked when claimed."""


class Storage(Coordination, Batches, KeyValue):
    """The contract. One instance is shared by all threads of a process."""

    url: str = ""
    """The URL this storage was opened from, with credentials removed (safe to log)."""

    transient_errors: tuple[type[Exception], ...] = ()
    """Errors that mean "the server is unreachable or busy now": the consumer retries the
    call with backoff instead of giving up (a dropped connection, a restart, a lock timeout)."""

    settle_writers: int = 1
    """How many of a consumer's settling writes may usefully be on their way at once: more
    than one where a write spends most of its time on the network rather than holding a lock
    the others would wait for."""

    # -- producers -------------------------------------------------------------------------

    @abc.abstractmethod
    def enqueue(self, tasks: Sequence[NewTask], *, restart_finished: bool = True) -> int:
        """Store tasks, all in one atomic step; returns how many were stored.

        A task whose id is already live (scheduled, queued or running) is left as it is and not
        counted, so re-enqueueing a live task is a no-op. An id that is done or dead starts over:
        counters, history and `suspect` reset — unless `restart_finished` is False, which
        leaves every stored id as it is: what the retry of an enqueue whose outcome is unknown
        sends, so that a first try that landed and already ran cannot run again.
        """

    @abc.abstractmethod
    def enqueue_slot(
        self, schedule: str, last: int | None, slot: int, tasks: Sequence[NewTask]
    ) -> bool:
        """Advance periodic `schedule` from its stored last slot `last` (None: it has none) to
        `slot`, and store `tasks`, in one atomic step: a compare-and-set. Returns False, and
        stores nothing, when the stored last slot is not `last` (another caller advanced it).

        Tasks are stored as `enqueue(tasks, restart_finished=False)` stores them: an id already
        stored is left as it is. Slots are whole seconds since the epoch.
        """

    @abc.abstractmethod
    def last_slots(self, schedules: Sequence[str]) -> dict[str, int]:
        """The stored last slot of each of `schedules` that has one."""

    # -- consumers -------------------------------------------------------------------------

    @abc.abstractmethod
    def claim(self, queues: Sequence[str], n: int, lease_s: float, consumer_id: str) -> list[Lease]:
        """Move up to `n` queued tasks of `queues` to running, each with a new lease token.

        Atomic per task: no two callers ever get the same task while its lease lives. Highest
        priority first, then oldest first, suspects included (`Lease.suspect` says which). Every
        new attempt starts not alone (see `isolate`). Returns [] when nothing is queued; never
        blocks.
        """

    @abc.abstractmethod
    def heartbeat(self, tokens: Iterable[str], lease_s: float) -> set[str]:
        """Extend every running lease named by `tokens` to now + lease_s, in one step.

        Returns the tokens no longer held (released, settled, or rescued and claimed again).
        """

    @abc.abstractmethod
    def ack(self, token: str, result: bytes | None, result_ttl: float | None) -> bool:
        """Running → done, storing `result` kept for `result_ttl` seconds (None: forever)."""

    def ack_and_claim(
        self,
        token: str,
        result: bytes | None,
        result_ttl: float | None,
        queues: Sequence[str],
        n: int,
        lease_s: float,
        consumer_id: str,
    ) -> tuple[bool, list[Lease]]:
        """`ack`, then `claim` up to `n` — in one round trip where the backend allows.

        Each half is atomic on its own; the claim happens whether or not the ack landed.
        `ack_many_and_claim` with one ack.
        """
        acked, leases = self.ack_many_and_claim(
            [Ack(token, result, result_ttl)], queues, n, lease_s, consumer_id
        )
        return acked[0], leases

    def ack_many_and_claim(
        self, acks: Sequence[Ack], queues: Sequence[str], n: int, lease_s: float, consumer_id: str
    ) -> tuple[list[bool], list[Lease]]:
        """Ack each of `acks`, then claim up to `n` (none when `n` is 0) — in one round trip
        and one transaction where the backend allows: a settler's group commit.

        Each ack is fenced by its own token exactly as `ack` is, and leaves the same history
        entry and result TTL; a refused one does not stop the others, and the claim happens
        whether or not any landed. A token named twice lands once (the first). Returns one
        bool per ack, in order, and the new leases. The default calls `ack` for each, then
        `claim`.

        An ack with a `flow` (a pipeline or chord step) stores it in the same atomic step,
        and only when the ack lands: its `follow` tasks as `enqueue(restart_finished=False)`
        stores them, its `join`
        counted once per chord and member index (the ack that completes the count stores the
        chord's callback, so exactly one does), its `release` deleted. A refused ack stores
        none of it. Backends override this; the default refuses flows.
        """
        if with_flows(acks):
            raise NotImplementedError(f"{type(self).__name__} cannot store flows with acks")
        acked = [self.ack(a.token, a.result, a.result_ttl) for a in acks]
        return acked, self.claim(queues, n, lease_s, consumer_id) if n > 0 else []

    # -- pipelines and chords --------------------------------------------------------------

    @abc.abstractmethod
    def dead_and_enqueue(
        self, token: str, reason: str, error: str | None, tasks: Sequence[NewTask]
    ) -> bool:
        """`dead`, and store `tasks` (a flow's error handler) in the same atomic step, only
        when the token holds its lease: a refused write stores nothing. Tasks are stored as
        `enqueue(restart_finished=False)` stores them."""

    @abc.abstractmethod
    def chord_info(self, chord_id: str) -> ChordInfo | None:
        """The countdown of chord `chord_id`: None before its first member finished (and after
        its callback finished, which releases it)."""

    @abc.abstractmethod
    def retry(self, token: str, eta: float, error: str) -> bool:
        """Running → scheduled at `eta` (queued when due now); counts one error."""

    @abc.abstractmethod
    def release(self, token: str, reason: str, delay: float = 0.0) -> bool:
        """Running → queued at once, keeping the checkpoint; counts one interruption.

        With `delay` > 0 the task is scheduled `delay` seconds from now instead: for a holder
        that cannot stop the attempt and must be gone before anyone else may claim the task.
        """

    @abc.abstractmethod
    def dead(self, token: str, reason: str, error: str | None) -> bool:
        """Running → dead with `reason` (a short word) and `error` (detail, e.g. traceback).

        The attempt counts in the budget its reason names: reason `error` counts one error,
        `interrupted` one interruption.
        """

    @abc.abstractmethod
    def checkpoint(self, token: str, state: bytes) -> bool:
        """Store the attempt's progress; the next attempt's lease carries it."""

    @abc.abstractmethod
    def isolate(self, token: str) -> bool:
        """Mark the attempt as run alone: its holder runs it with no other attempt of its own
        running or held. The holder calls it just before it starts such an attempt.

        Only an attempt run alone is charged a crash when its lease expires (`rescue`). One
        atomic write; fenced: False when the token no longer holds the lease.
        """

    def crash(self, token: str, detail: str) -> Rescued | None:
        """Running → queued at once, counting a crash (dead `crashed` at `max_crashes`).

        For a holder that saw its attempt die (a child process killed by a signal) and need
        not wait for the lease to expire. Always charged, alone or not: the holder saw which
        attempt died. Atomic; fenced: None when the token no longer holds the lease. Backends
        that cannot raise NotImplementedError; the rescuer then recovers the task when its
        lease expires.
        """
        raise NotImplementedError

    def hand_back(self, consumer_id: str, queues: Sequence[str], keep: Collection[str]) -> int:
        """Running → queued, charged nothing, for every task of `queues` leased to
        `consumer_id` under a token not in `keep`: the leases a claim gave the consumer though
        its reply was lost (a timeout, a dropped connection), which no worker runs. Their
        history gets a HANDED_BACK entry (detail UNSTARTED). Returns how many were handed back.

        The consumer calls it once storage answers again, with the tokens it holds, while none
        of its own claims is in flight. Without it such a task waits for its lease to expire.
        """
        raise NotImplementedError

    def check(self, *, create: bool = True) -> None:
        """Reach the storage once, so that a command says at its start what is wrong.

        Raises ConfigurationError when the storage refuses this configuration (a wrong
        password, a database or db number that does not exist, or, with `create` False, no
        scoter schema where one must be created), and one of `transient_errors`, naming where
        and why, when it cannot be reached now. Creates the schema if needed unless `create`
        is False (a read must not). The default does nothing.
        """

    def misconfigured(self, exc: BaseException) -> ConfigurationError | None:
        """The ConfigurationError that `exc`, raised by a call, stands for when the server
        refused this storage's configuration (credentials, database, db number): trying again
        cannot help. None for any other error (the default)."""
        return None

    def not_stored(self, exc: Exception) -> bool:
        """Whether `exc`, a transient error a write raised, proves that the write did not
        happen (it never reached the server, or its transaction rolled back) rather than
        leaving its outcome unknown. The default says unknown."""
        return False

    def progress(self, token: str, done: int, total: int) -> bool:
        """Record how far the running attempt got, for inspection. Fenced.

        Backends that keep no progress return True without storing it.
        """
        return True

    @abc.abstractmethod
    def rescue(self, now: float) -> list[Rescued]:
        """Requeue every running task whose lease expired before `now`: its holder is presumed
        dead, and which of its attempts killed it is unknown.

        An attempt run alone (`isolate`) is charged as `crash` charges it — by the same
        statement or script — with detail EXPIRED: one crash more, dead `crashed` once crashes
        reach `max_crashes`. Any other attempt is charged nothing: its task is queued with
        `suspect` set, crashes unchanged, and a `crashed` history entry with detail SPARED.
        Consumers run a suspect alone: the task that killed its holder is charged its next
        crashes, and the tasks that ran beside it none. Returns what it moved, `charged`
        saying which; [] when nothing expired.

        In batches (`in_batches`): each batch of up to `maintenance_batch` tasks is atomic, the
        step as a whole is not — a task whose lease expires during the step may be left to the
        next call.
        """

    @abc.abstractmethod
    def promote(self, now: float) -> int:
        """Move scheduled tasks whose eta is at or before `now` to queued; returns the count.

        In batches (`in_batches`): each batch is atomic, the step as a whole is not.
        """

    def wait(self, queues: Sequence[str], timeout: float) -> None:
        """Block up to `timeout` seconds, returning early when work may have arrived.

        A hint only: callers claim after it returns. The default sleeps.
        """
        time.sleep(timeout)

    def wait_and_claim(
        self, queues: Sequence[str], n: int, lease_s: float, consumer_id: str, timeout: float
    ) -> list[Lease]:
        """`wait`, then `claim`: what an idle consumer does. A backend may do both in one
        round trip, so that a consumer woken by a new task holds it one round trip sooner."""
        self.wait(queues, timeout)
        return self.claim(queues, n, lease_s, consumer_id)

    # -- results and inspection ------------------------------------------------------------

    @abc.abstractmethod
    def get(self, task_id: str) -> TaskInfo | None:
        """The task's stored record, or None when it does not exist (or expired)."""

    @abc.abstractmethod
    def counts(self) -> dict[tuple[str, State], int]:
        """How many tasks each (queue, state) holds; pairs with none are left out."""

    @abc.abstractmethod
    def list_tasks(
        self, state: State, queue: str | None = None, limit: int = 100
    ) -> list[TaskInfo]:
        """Tasks in `state` (optionally of one queue), oldest first, at most `limit`."""

    @abc.abstractmethod
    def requeue_dead(self, ids: Sequence[str] | None = None) -> int:
        """Dead → queued for the given ids (all dead tasks when None), budgets and `suspect`
        reset; returns the count.

        In batches (`in_batches`) of up to `maintenance_batch` tasks (or ids), each atomic: a
        task that dies while the step runs may be left dead.
        """

    @abc.abstractmethod
    def purge(self, state: State, ids: Sequence[str] | None = None) -> int:
        """Delete tasks in `state` (only those ids when given); returns the count.

        In batches (`in_batches`) of up to `maintenance_batch` tasks (or ids), each atomic: a
        task that enters `state` while the step runs may be left.
        """

    @abc.abstractmethod
    def expire_results(self, now: float) -> int:
        """Delete done tasks whose result TTL ran out before `now`; returns the count.

        In batches (`in_batches`): each batch is atomic, the step as a whole is not.
        """

    def close(self) -> None:
        """Release connections. The storage must not be used afterwards."""

    # -- time: revocation and the earliest eta ------------------------------------------------

    @abc.abstractmethod
    def revoke(self, ids: Sequence[str]) -> dict[str, State]:
        """Revoke tasks by id, each in one atomic step: a scheduled or queued task goes dead
        with reason `revoked` at once (history entry `revoked`), so no claim can take it; a
        running one keeps its lease and is listed in `revocations().ids` until it ends (the
        record names the task as stored now: a later re-enqueue of the id is not revoked).

        Returns the state each id was in when revoked; ids not live are left out.
        """

    @abc.abstractmethod
    def restore(self, ids: Sequence[str]) -> int:
        """Undo `revoke`: a task dead with reason `revoked` goes back to queued, or to
        scheduled when its eta is ahead, counters kept; any id leaves `revocations().ids`.
        Returns how many tasks it requeued or took out of `revocations().ids`.
        """

    @abc.abstractmethod
    def forget_revocation(self, task_id: str) -> bool:
        """Delete the record of `task_id`'s revocation while running (its consumer ended it
        revoked), so that an operator's `requeue_dead` of it runs it. True if a record was
        still stored (a backend may delete the records of ended tasks sooner)."""

    @abc.abstractmethod
    def revoke_task(self, name: str, until: float | None, once: bool) -> None:
        """Store (or replace) the revocation of every task named `name` (see Revocation).
        Consumers apply it when they claim; nothing stored changes here."""

    @abc.abstractmethod
    def restore_task(self, name: str) -> bool:
        """Delete the revocation of `name`; True if there was one."""

    @abc.abstractmethod
    def take_revocation(self, name: str) -> bool:
        """Delete the `once` revocation of `name` in one atomic step; True only for the one
        caller that deleted it (that caller revokes the task it claimed)."""

    @abc.abstractmethod
    def revocations(self) -> Revocations:
        """Every name revocation, and the ids of live tasks revoked while running (records of
        tasks that ended, or were re-enqueued since, are left out). Read only; small."""

    @abc.abstractmethod
    def next_eta(self) -> float | None:
        """The earliest eta of any scheduled task, on this host's clock (a backend with a
        server measures it on the server's and shifts it by the clocks' difference); None
        when none is scheduled. Read only, one index lookup: the scheduler sleeps until it."""

    def find_tasks(self, name: str, state: State | None = None, limit: int = 100) -> list[TaskInfo]:
        """Tasks whose name contains `name` (case-sensitive; every task when it is empty), in
        `state` or in any, newest first (the latest enqueued: an id enqueued again counts from
        then), at most `limit`. Read only, never blocks; may read every stored task of the
        states searched — a search for an operator, not for a hot path.

        The default reads each state's tasks through `list_tasks`; backends search on the
        server instead.
        """
        if limit <= 0:
            return []
        states = list(State) if state is None else [state]
        found = [t for s in states for t in self.list_tasks(s, limit=2**62) if name in t.name]
        found.sort(key=attrgetter("created_at"), reverse=True)
        return found[:limit]
