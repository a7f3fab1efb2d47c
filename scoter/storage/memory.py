"""In-process storage: the reference backend for tests and immediate mode.

One lock guards everything, so every method is atomic. Nothing survives the process.
"""

from __future__ import annotations

import itertools
import threading
import time
import uuid
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field

from scoter.states import LIVE_STATES, REVOKED, State
from scoter.storage._memory_coordination import MemoryCoordination, _Lock
from scoter.storage._memory_data import MemoryData
from scoter.storage.base import (
    EXPIRED,
    HANDED_BACK,
    HISTORY_LIMIT,
    SPARED,
    UNSTARTED,
    Ack,
    ChordInfo,
    Flow,
    Join,
    Lease,
    NewTask,
    Rescued,
    Revocation,
    Revocations,
    Storage,
    TaskInfo,
)
from scoter.storage.coordination import TaskLimit


@dataclass(slots=True)
class _Row:
    task: NewTask
    seq: int
    state: State
    created_at: float
    updated_at: float
    eta: float | None
    attempts: int = 0
    errors: int = 0
    interruptions: int = 0
    crashes: int = 0
    token: str | None = None
    consumer: str | None = None
    lease_expires: float | None = None
    checkpoint: bytes | None = None
    result: bytes | None = None
    result_expires: float | None = None
    error: str | None = None
    reason: str | None = None
    history: list[dict[str, object]] = field(default_factory=list)
    progress: tuple[int, int] | None = None
    alone: bool = False
    suspect: bool = False


class MemoryStorage(MemoryData, MemoryCoordination, Storage):
    """Dict-backed storage guarded by one condition variable."""

    def __init__(self) -> None:
        self.url = "memory://"
        self._rows: dict[str, _Row] = {}
        self._by_token: dict[str, _Row] = {}
        self._seq = itertools.count()
        self._cond = threading.Condition()
        self._slots: dict[str, int] = {}
        self._chords: dict[str, ChordInfo] = {}
        self._revoked_names: dict[str, Revocation] = {}
        self._revoked_rows: dict[str, _Row] = {}
        """Tasks revoked while running, by id: the row revoked (a restart makes a new one)."""
        self._unique: dict[str, str] = {}
        """unique key -> the id of the last task stored with it (live or not)."""
        self._locks: dict[str, _Lock] = {}
        self._limits: dict[str, TaskLimit] = {}
        self._starts: dict[str, list[float]] = {}
        """A rate's key -> the times it was used, oldest first (pruned past its window)."""
        self._data: dict[str, tuple[bytes, float | None]] = {}

    def enqueue(self, tasks: Sequence[NewTask], *, restart_finished: bool = True) -> int:
        now = time.time()
        stored = 0
        with self._cond:
            for task in tasks:
                old = self._rows.get(task.id)
                if old is not None and (old.state in LIVE_STATES or not restart_finished):
                    continue
                due = task.eta is None or task.eta <= now
                state = State.QUEUED if due else State.SCHEDULED
                self._rows[task.id] = _Row(task, next(self._seq), state, now, now, task.eta)
                stored += 1
            self._cond.notify_all()
        return stored

    def enqueue_slot(
        self, schedule: str, last: int | None, slot: int, tasks: Sequence[NewTask]
    ) -> bool:
        with self._cond:  # reentrant: enqueue takes it again
            if self._slots.get(schedule) != last:
                return False
            self._slots[schedule] = slot
            self.enqueue(tasks, restart_finished=False)
            return True

    def last_slots(self, schedules: Sequence[str]) -> dict[str, int]:
        with self._cond:
            return {s: self._slots[s] for s in schedules if s in self._slots}

    def claim(self, queues: Sequence[str], n: int, lease_s: float, consumer_id: str) -> list[Lease]:
        now = time.time()
        with self._cond:
            ready = [
                r for r in self._rows.values() if r.state is State.QUEUED and r.task.queue in queues
            ]
            ready.sort(key=lambda r: (-r.task.priority, r.seq))
            ready = self._within_limits(ready, n, now) if self._limits else ready
            chosen = ready[: max(n, 0)]  # a negative n claims nothing, as n=0 does
            return [self._lease(row, now + lease_s, consumer_id, now) for row in chosen]

    def claim_ahead(
        self, queues: Sequence[str], n: int, lease_s: float, consumer_id: str
    ) -> list[Lease]:
        now = time.time()
        with self._cond:
            ready = [
                r for r in self._rows.values()
                if r.state is State.QUEUED and r.task.queue in queues
                and r.task.name not in self._limits
            ]  # fmt: skip
            ready.sort(key=lambda r: (-r.task.priority, r.seq))
            return [self._lease(row, now + lease_s, consumer_id, now) for row in ready[: max(n, 0)]]

    def _lease(self, row: _Row, expires: float, consumer_id: str, now: float) -> Lease:
        row.state = State.RUNNING
        row.token = uuid.uuid4().hex
        row.consumer = consumer_id
        row.lease_expires = expires
        row.attempts += 1
        row.alone = False
        row.updated_at = now
        self._by_token[row.token] = row
        t = row.task
        return Lease(
            row.token, t.id, t.name, t.queue, t.payload, expires, row.attempts,
            row.errors, row.interruptions, row.crashes, row.checkpoint, row.suspect,
            t.priority, t.max_crashes,
        )  # fmt: skip

    def heartbeat(self, tokens: Iterable[str], lease_s: float) -> set[str]:
        expires = time.time() + lease_s
        lost = set()
        with self._cond:
            for token in tokens:
                row = self._by_token.get(token)
                if row is None:
                    lost.add(token)
                else:
                    row.lease_expires = expires
        return lost

    def _settle(self, token: str, outcome: str, state: State, detail: str | None) -> _Row | None:
        """Fenced end of an attempt: the row, unleased and in `state`, or None if stale."""
        row = self._by_token.pop(token, None)
        if row is None:
            return None
        now = time.time()
        row.history.append(_entry(row, outcome, now, detail))
        del row.history[:-HISTORY_LIMIT]
        row.state, row.token, row.consumer, row.lease_expires = state, None, None, None
        row.progress = None
        row.updated_at = now
        self._cond.notify_all()
        return row

    def ack(self, token: str, result: bytes | None, result_ttl: float | None) -> bool:
        with self._cond:
            row = self._settle(token, "succeeded", State.DONE, None)
            if row is None:
                return False
            row.result = result
            row.result_expires = None if result_ttl is None else time.time() + result_ttl
            return True

    def ack_many_and_claim(
        self, acks: Sequence[Ack], queues: Sequence[str], n: int, lease_s: float, consumer_id: str
    ) -> tuple[list[bool], list[Lease]]:
        """Under one hold of the lock: no other call sees the acks without the claim, nor an
        ack without its flow."""
        with self._cond:
            acked = [self._ack_with_flow(a) for a in acks]
            return acked, self.claim(queues, n, lease_s, consumer_id)

    def _ack_with_flow(self, a: Ack) -> bool:
        landed = self.ack(a.token, a.result, a.result_ttl)
        if landed and a.flow is not None:
            self._store_flow(a.flow)
        return landed

    def _store_flow(self, flow: Flow) -> None:
        tasks = list(flow.follow)
        if flow.join is not None and self._join(flow.join):
            tasks.append(flow.join.callback)
        if flow.release is not None:
            self._chords.pop(flow.release, None)
        if tasks:
            self.enqueue(tasks, restart_finished=False)

    def _join(self, join: Join) -> bool:
        """Count the member down; whether it was the last one."""
        chord = self._chords.setdefault(join.chord, ChordInfo(join.chord, join.size, {}))
        if join.index in chord.results:
            return False
        chord.results[join.index] = join.result
        return len(chord.results) == chord.size

    def dead_and_enqueue(
        self, token: str, reason: str, error: str | None, tasks: Sequence[NewTask]
    ) -> bool:
        with self._cond:
            if not self.dead(token, reason, error):
                return False
            self.enqueue(tasks, restart_finished=False)
            return True

    def chord_info(self, chord_id: str) -> ChordInfo | None:
        with self._cond:
            chord = self._chords.get(chord_id)
            return None if chord is None else ChordInfo(chord.id, chord.size, dict(chord.results))

    def retry(self, token: str, eta: float, error: str) -> bool:
        with self._cond:
            due = eta <= time.time()
            state = State.QUEUED if due else State.SCHEDULED
            row = self._settle(token, "error", state, _first_line(error))
            if row is None:
                return False
            row.errors += 1
            row.eta, row.error = eta, error
            return True

    def release(self, token: str, reason: str, delay: float = 0.0) -> bool:
        with self._cond:
            state = State.SCHEDULED if delay > 0 else State.QUEUED
            row = self._settle(token, "interrupted", state, reason)
            if row is None:
                return False
            row.interruptions += 1
            if delay > 0:
                row.eta = time.time() + delay
            return True

    def dead(self, token: str, reason: str, error: str | None) -> bool:
        with self._cond:
            row = self._settle(token, reason, State.DEAD, _first_line(error))
            if row is None:
                return False
            row.reason, row.error = reason, error
            row.errors += reason == "error"
            row.interruptions += reason == "interrupted"
            return True

    def checkpoint(self, token: str, state: bytes) -> bool:
        with self._cond:
            row = self._by_token.get(token)
            if row is None:
                return False
            row.checkpoint = state
            return True

    def isolate(self, token: str) -> bool:
        with self._cond:
            row = self._by_token.get(token)
            if row is None:
                return False
            row.alone = True
            return True

    def rescue(self, now: float) -> list[Rescued]:
        return self.in_list_batches(lambda limit: self._rescue(now, limit))

    def _rescue(self, now: float, limit: int) -> list[Rescued]:
        with self._cond:
            expired = list(itertools.islice((
                row.token for row in self._by_token.values()
                if row.token and row.lease_expires is not None and row.lease_expires < now
            ), limit))  # fmt: skip
            return [self._crash(token, EXPIRED, SPARED) for token in expired]

    def crash(self, token: str, detail: str) -> Rescued | None:
        with self._cond:
            return self._crash(token, detail, None) if token in self._by_token else None

    def _crash(self, token: str, detail: str, spared: str | None) -> Rescued:
        """The one crash rule: an attempt run alone is charged, any other too when `spared`
        is None; one not charged is queued as a suspect, with `spared` as its detail."""
        row = self._by_token[token]
        charged = row.alone or spared is None
        crashes = row.crashes + int(charged)
        state = State.DEAD if charged and crashes >= row.task.max_crashes else State.QUEUED
        self._settle(token, "crashed", state, detail if charged else spared)
        row.crashes = crashes
        row.suspect = row.suspect or not charged
        if state is State.DEAD:
            row.reason, row.error = "crashed", _crashed_detail(crashes, detail)
        return Rescued(row.task.id, row.task.name, state, crashes, charged)

    def hand_back(self, consumer_id: str, queues: Sequence[str], keep: Collection[str]) -> int:
        with self._cond:
            orphans = [
                token for token, row in self._by_token.items()
                if row.consumer == consumer_id and row.task.queue in queues and token not in keep
            ]  # fmt: skip
            for token in orphans:
                self._settle(token, HANDED_BACK, State.QUEUED, UNSTARTED)
            return len(orphans)

    def progress(self, token: str, done: int, total: int) -> bool:
        with self._cond:
            row = self._by_token.get(token)
            if row is None:
                return False
            row.progress = (done, total)
            return True

    def promote(self, now: float) -> int:
        return self.in_batches(lambda limit: self._promote(now, limit))

    def _promote(self, now: float, limit: int) -> int:
        with self._cond:
            due = list(itertools.islice((
                r for r in self._rows.values()
                if r.state is State.SCHEDULED and (r.eta is None or r.eta <= now)
            ), limit))  # fmt: skip
            for row in due:
                row.state = State.QUEUED
                row.updated_at = now
            if due:
                self._cond.notify_all()
            return len(due)

    def wait(self, queues: Sequence[str], timeout: float) -> None:
        with self._cond:
            self._cond.wait(timeout)

    def get(self, task_id: str) -> TaskInfo | None:
        with self._cond:
            row = self._rows.get(task_id)
            return None if row is None else _info(row)

    def counts(self) -> dict[tuple[str, State], int]:
        counts: dict[tuple[str, State], int] = {}
        with self._cond:
            for row in self._rows.values():
                key = (row.task.queue, row.state)
                counts[key] = counts.get(key, 0) + 1
        return counts

    def list_tasks(
        self, state: State, queue: str | None = None, limit: int = 100
    ) -> list[TaskInfo]:
        with self._cond:
            rows = [
                r for r in self._rows.values()
                if r.state is state and (queue is None or r.task.queue == queue)
            ]  # fmt: skip
            rows.sort(key=lambda r: r.seq)
            return [_info(r) for r in rows[:limit]]

    def requeue_dead(self, ids: Sequence[str] | None = None) -> int:
        if ids is not None:
            return self.in_id_batches(ids, self._requeue_dead)
        return self.in_batches(lambda limit: self._requeue_dead(None, limit))

    def _requeue_dead(self, ids: Sequence[str] | None, limit: int | None = None) -> int:
        with self._cond:
            rows = self._select(State.DEAD, ids, limit)
            for row in rows:
                row.state, row.reason, row.eta = State.QUEUED, None, None
                row.errors = row.interruptions = row.crashes = 0
                row.alone = row.suspect = False
                row.updated_at = time.time()
            self._cond.notify_all()
            return len(rows)

    def purge(self, state: State, ids: Sequence[str] | None = None) -> int:
        if ids is not None:
            return self.in_id_batches(ids, lambda chunk: self._purge(state, chunk))
        return self.in_batches(lambda limit: self._purge(state, None, limit))

    def _purge(self, state: State, ids: Sequence[str] | None, limit: int | None = None) -> int:
        with self._cond:
            rows = self._select(state, ids, limit)
            for row in rows:
                del self._rows[row.task.id]
                if row.token is not None:
                    self._by_token.pop(row.token, None)
            return len(rows)

    def _select(self, state: State, ids: Sequence[str] | None, limit: int | None) -> list[_Row]:
        """The rows in `state`: of `ids` if given (each once), else the first `limit`."""
        if ids is None:
            in_state = (r for r in self._rows.values() if r.state is state)
            return list(itertools.islice(in_state, limit))
        found = (self._rows.get(i) for i in dict.fromkeys(ids))
        return [r for r in found if r is not None and r.state is state]

    def expire_results(self, now: float) -> int:
        return self.in_batches(lambda limit: self._expire_results(now, limit))

    def _expire_results(self, now: float, limit: int) -> int:
        with self._cond:
            old = list(itertools.islice((
                r for r in self._rows.values()
                if r.state is State.DONE and r.result_expires is not None
                and r.result_expires < now
            ), limit))  # fmt: skip
            for row in old:
                del self._rows[row.task.id]
            return len(old)

    # -- time: revocation and the earliest eta ------------------------------------------------

    def revoke(self, ids: Sequence[str]) -> dict[str, State]:
        found: dict[str, State] = {}
        with self._cond:
            now = time.time()
            for task_id in dict.fromkeys(ids):
                row = self._rows.get(task_id)
                if row is None or row.state not in LIVE_STATES:
                    continue
                found[task_id] = row.state
                if row.state is State.RUNNING:
                    self._revoked_rows[task_id] = row
                    continue
                detail = f"revoked while {row.state.value}"
                row.history.append(_entry(row, REVOKED, now, detail))
                del row.history[:-HISTORY_LIMIT]
                row.state, row.reason, row.error, row.updated_at = State.DEAD, REVOKED, detail, now
        return found

    def restore(self, ids: Sequence[str]) -> int:
        restored = 0
        with self._cond:
            now = time.time()
            for task_id in dict.fromkeys(ids):
                row = self._rows.get(task_id)
                listed = self._revoked_rows.pop(task_id, None) is row and row is not None
                if row is not None and row.state is State.DEAD and row.reason == REVOKED:
                    ahead = row.eta is not None and row.eta > now
                    row.state = State.SCHEDULED if ahead else State.QUEUED
                    row.reason = row.error = None
                    row.updated_at = now
                    listed = True
                restored += listed
            self._cond.notify_all()
        return restored

    def forget_revocation(self, task_id: str) -> bool:
        with self._cond:
            return self._revoked_rows.pop(task_id, None) is not None

    def revoke_task(self, name: str, until: float | None, once: bool) -> None:
        with self._cond:
            self._revoked_names[name] = Revocation(until, once)

    def restore_task(self, name: str) -> bool:
        with self._cond:
            return self._revoked_names.pop(name, None) is not None

    def take_revocation(self, name: str) -> bool:
        with self._cond:
            revocation = self._revoked_names.get(name)
            if revocation is None or not revocation.once:
                return False
            del self._revoked_names[name]
            return True

    def revocations(self) -> Revocations:
        with self._cond:
            ids = frozenset(
                task_id for task_id, row in self._revoked_rows.items()
                if self._rows.get(task_id) is row and row.state in LIVE_STATES
            )  # fmt: skip
            return Revocations(dict(self._revoked_names), ids)

    def next_eta(self) -> float | None:
        with self._cond:
            etas = [
                r.eta for r in self._rows.values()
                if r.state is State.SCHEDULED and r.eta is not None
            ]  # fmt: skip
            return min(etas, default=None)

    def find_tasks(self, name: str, state: State | None = None, limit: int = 100) -> list[TaskInfo]:
        with self._cond:
            rows = [
                r for r in self._rows.values()
                if name in r.task.name and (state is None or r.state is state)
            ]  # fmt: skip
            rows.sort(key=lambda r: r.seq, reverse=True)
            return [_info(r) for r in rows[: max(limit, 0)]]


def _first_line(text: str | None) -> str | None:
    if not text:
        return None
    lines = text.strip().splitlines()
    return lines[-1][:200] if lines else None


def _crashed_detail(crashes: int, detail: str) -> str:
    return f"crashed {crashes} time(s), the last one: {detail}"


def _entry(row: _Row, outcome: str, now: float, detail: str | None) -> dict[str, object]:
    entry: dict[str, object] = {
        "attempt": row.attempts, "outcome": outcome, "at": now, "consumer": row.consumer,
    }  # fmt: skip
    if detail:
        entry["detail"] = detail
    return entry


def _info(row: _Row) -> TaskInfo:
    t = row.task
    return TaskInfo(
        id=t.id, name=t.name, queue=t.queue, state=row.state, priority=t.priority,
        eta=row.eta, attempts=row.attempts, errors=row.errors,
        interruptions=row.interruptions, crashes=row.crashes, max_crashes=t.max_crashes,
        consumer=row.consumer, lease_expires=row.lease_expires, result=row.result,
        error=row.error, reason=row.reason, payload=t.payload, created_at=row.created_at,
        updated_at=row.updated_at, history=[dict(h) for h in row.history],
        progress=row.progress if row.state is State.RUNNING else None, suspect=row.suspect,
    )  # fmt: skip
