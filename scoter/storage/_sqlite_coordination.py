"""Unique keys, locks and limits of the SQLite storage (the queries, tables included, are in
sqlite_coordination.sql). Every step is one statement or one `BEGIN IMMEDIATE` transaction, so
one file's processes take turns: the write lock is what makes a unique key, a lock or a limit
hold across them."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from scoter.storage._limits import (
    Known,
    allowances,
    as_float,
    earliest,
    limited,
    pick,
    rate_key,
    state,
)
from scoter.storage._sqlite_process import Transaction
from scoter.storage._sqlite_rows import enqueue_rows, text_as_stored
from scoter.storage.base import NewTask
from scoter.storage.coordination import LimitState, LockInfo, TaskLimit


class SQLiteCoordination:
    """The coordination steps of `SQLiteStorage`, which mixes this in."""

    _queries: dict[str, str]
    _limits: Known

    if TYPE_CHECKING:

        def _transaction(self) -> Transaction: ...

        def _read(self, query: str, params: dict[str, Any]) -> tuple[sqlite3.Cursor, list[Any]]: ...

        def _write(
            self, query: str, params: dict[str, Any], *, lenient: bool = False
        ) -> tuple[list[Any], int]: ...

    def _any_limits(self) -> bool:
        return bool(self._read("limits_any", {})[1][0][0])

    # -- unique tasks ----------------------------------------------------------------------

    def enqueue_unique(
        self, tasks: Sequence[NewTask], *, restart_finished: bool = True
    ) -> list[str]:
        """One transaction: each key looked up (its index), each task stored as `enqueue`
        stores it, and its key set when it was."""
        sql = self._queries
        rows = enqueue_rows(tasks, time.time(), restart_finished)
        ids = []
        with self._transaction() as db:
            for task, row in zip(tasks, rows, strict=True):
                key = task.unique_key
                found = db.execute(sql["unique_holder"], {"key": key}).fetchone() if key else None
                if found is not None:
                    ids.append(found[0])
                    continue
                before = db.total_changes
                db.execute(sql["enqueue"], row)
                if key and db.total_changes > before:
                    db.execute(sql["unique_set"], {"id": task.id, "key": key})
                ids.append(task.id)
        return ids

    # -- locks -----------------------------------------------------------------------------

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
        now = time.time()
        params = {
            "name": name, "owner": owner, "task_id": task_id, "lease_token": lease_token,
            "expires": None if ttl is None else now + ttl, "holder": holder, "now": now,
        }  # fmt: skip
        return self._write("lock_acquire", params)[1] == 1

    def renew_lock(self, name: str, owner: str, ttl: float) -> bool:
        now = time.time()
        params = {"name": name, "owner": owner, "expires": now + ttl, "now": now}
        return self._write("lock_renew", params)[1] == 1

    def release_lock(self, name: str, owner: str) -> bool:
        params = {"name": name, "owner": owner, "now": time.time()}
        with self._transaction() as db:
            held = db.execute(self._queries["lock_owned"], params).fetchone() is not None
            db.execute(self._queries["lock_release"], params)
            return held

    def locks(self, names: Sequence[str] | None = None) -> list[LockInfo]:
        wanted = None if names is None else json.dumps(list(names))
        _, rows = self._read("locks_held", {"names": wanted, "now": time.time()})
        return [
            LockInfo(name, holder, task_id, earliest(expires, lease), acquired)
            for name, holder, task_id, expires, acquired, lease in rows
        ]

    def flush_locks(self, names: Sequence[str] | None = None) -> list[str]:
        params = {"names": None if names is None else json.dumps(list(names)), "now": time.time()}
        with self._transaction() as db:
            held = [row[0] for row in db.execute(self._queries["locks_held"], params)]
            db.execute(self._queries["locks_flush"], params)
        return held

    # -- concurrency and rate limits -------------------------------------------------------

    def set_limits(self, limits: Sequence[TaskLimit]) -> None:
        now = time.time()
        with self._transaction() as db:
            for limit in limits:
                if limited(limit):
                    params = {
                        "name": limit.name, "concurrency": limit.concurrency,
                        "rate": limit.rate, "per": limit.per, "now": now,
                    }  # fmt: skip
                    db.execute(self._queries["limit_set"], params)
                else:
                    db.execute(self._queries["limit_delete"], {"name": limit.name})
        self._limits.forget()

    def limit_states(self, names: Sequence[str] | None = None) -> list[LimitState]:
        wanted = None if names is None else json.dumps(list(names))
        _, rows = self._read("limit_states", {"names": wanted, "now": time.time()})
        return [_limit_state(row) for row in rows]

    def _claim_within_limits(
        self, db: sqlite3.Connection, queues: Sequence[str], params: dict[str, Any]
    ) -> list[Any]:
        """The claim under limits, in the caller's transaction: each limited name's tasks
        within its allowance, the others in claim order past them; their starts counted."""
        sql, now = self._queries, params["now"]
        with text_as_stored(db):
            rows = db.execute(sql["limit_states"], {"names": None, "now": now}).fetchall()
            states = [_limit_state(row) for row in rows]
            in_queues = json.dumps(list(queues))

            def first(full: list[str], picked: list[int], k: int) -> list[tuple[int, str]]:
                query = {"queues": in_queues, "full": json.dumps(full),
                         "picked": json.dumps(picked), "n": k}  # fmt: skip
                return db.execute(sql["claimable"], query).fetchall()

            seqs = pick(first, allowances(states), params["n"])
            if not seqs:
                return []
            claimed = db.execute(sql["claim_seqs"], {**params, "seqs": json.dumps(seqs)})
            leased = claimed.fetchall()
        self._count_starts(db, states, [row[2] for row in leased], now)
        return leased

    def _count_starts(
        self, db: sqlite3.Connection, states: list[LimitState], names: list[str], now: float
    ) -> None:
        rated = {s.limit.name: s.limit.per for s in states if s.limit.rate is not None}
        for name, per in rated.items():
            db.execute(self._queries["starts_prune"], {"key": name, "now": now, "per": per})
        started = [{"key": name, "now": now} for name in names if name in rated]
        db.executemany(self._queries["start_record"], started)

    def reset_rate(self, key: str) -> None:
        self._write("starts_reset", {"key": rate_key(key)})

    def take_rate(self, key: str, limit: int, per: float) -> bool:
        params = {"key": rate_key(key), "now": time.time(), "per": per}
        with self._transaction() as db:
            db.execute(self._queries["starts_prune"], params)
            if db.execute(self._queries["starts_count"], params).fetchone()[0] >= limit:
                return False
            db.execute(self._queries["start_record"], params)
            return True


def _limit_state(row: tuple[Any, ...]) -> LimitState:
    name, concurrency, rate, per, running, started, oldest = row
    return state(TaskLimit(name, concurrency, rate, as_float(per)), running, started, oldest)
