"""Unique keys, locks and limits of the PostgreSQL storage (migration 0006; the queries are in
postgres_coordination.sql). Times are the server's clock; concurrent steps that must take
turns do so on row locks (a lock's row, every limit's row) or on a transaction's advisory
lock (a unique key, a take_rate key)."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

from scoter.storage._limits import Known, allowances, earliest, limited, pick, rate_key, state
from scoter.storage._postgres_schema import fetch
from scoter.storage.base import Lease, NewTask
from scoter.storage.coordination import LimitState, LockInfo, TaskLimit

if TYPE_CHECKING:
    import psycopg

    Connection = psycopg.Connection[Any]


class PostgresCoordination:
    """The coordination steps of `PostgresStorage`, which mixes this in."""

    schema: str
    _sql: dict[str, str]
    _limits: Known

    if TYPE_CHECKING:

        def _connection(self) -> AbstractContextManager[Connection]: ...

        def _rows(self, query: str, params: dict[str, Any]) -> list[tuple[Any, ...]]: ...

        def _rowcount(self, query: str, **params: Any) -> int: ...

        def _leases(self, rows: list[tuple[Any, ...]]) -> list[Lease]: ...

        def _ready_pool(self) -> Any: ...

        def _enqueue(
            self, conn: Connection, tasks: Sequence[NewTask], restart_finished: bool = True
        ) -> int: ...

    def _any_limits(self) -> bool:
        return bool(self._rows("limits_any", {})[0][0])

    # -- unique tasks ----------------------------------------------------------------------

    def enqueue_unique(
        self, tasks: Sequence[NewTask], *, restart_finished: bool = True
    ) -> list[str]:
        with self._connection() as conn, conn.transaction():
            return self._enqueue_unique(conn, tasks, restart_finished)

    def enqueue_unique_in(self, conn: Connection, tasks: Sequence[NewTask]) -> list[str]:
        """`enqueue_unique` inside the caller's transaction on `conn`, as `enqueue_in`: the
        keys stay taken by it (other enqueues of them wait) until it commits or rolls back."""
        self._ready_pool()
        return self._enqueue_unique(conn, tasks, True)

    def _enqueue_unique(
        self, conn: Connection, tasks: Sequence[NewTask], restart_finished: bool
    ) -> list[str]:
        """In the transaction on `conn`: the keys' advisory locks, their live holders, then
        each task stored (and its key set when it was) unless its key is held."""
        keys = sorted({t.unique_key for t in tasks if t.unique_key})
        holders: dict[str, str] = {}
        if keys:
            prefix = f"scoter.unique.{self.schema}."
            conn.execute(self._sql["unique_lock"], {"prefix": prefix, "keys": keys})
            holders = dict(fetch(conn, self._sql["unique_holders"], {"keys": keys}))
        ids = []
        for task in tasks:
            key = task.unique_key
            if key and key in holders:
                ids.append(holders[key])
                continue
            stored = self._enqueue(conn, [task], restart_finished)
            if key and stored:
                conn.execute(self._sql["unique_set"], {"id": task.id, "key": key})
                holders[key] = task.id
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
        params = {
            "name": name, "owner": owner, "task_id": task_id, "lease_token": lease_token,
            "ttl": ttl, "holder": holder,
        }  # fmt: skip
        return self._rowcount("lock_acquire", **params) == 1

    def renew_lock(self, name: str, owner: str, ttl: float) -> bool:
        return self._rowcount("lock_renew", name=name, owner=owner, ttl=ttl) == 1

    def release_lock(self, name: str, owner: str) -> bool:
        rows = self._rows("lock_release", {"name": name, "owner": owner})
        return bool(rows and rows[0][0])

    def locks(self, names: Sequence[str] | None = None) -> list[LockInfo]:
        wanted = None if names is None else list(names)
        return [
            LockInfo(name, holder, task_id, earliest(expires, lease), acquired)
            for name, holder, task_id, expires, acquired, lease in self._rows(
                "locks_held", {"names": wanted}
            )
        ]

    def flush_locks(self, names: Sequence[str] | None = None) -> list[str]:
        wanted = None if names is None else list(names)
        return [row[0] for row in self._rows("locks_flush", {"names": wanted})]

    # -- concurrency and rate limits -------------------------------------------------------

    def set_limits(self, limits: Sequence[TaskLimit]) -> None:
        last = {limit.name: limit for limit in limits}  # one per name: the last given
        given = [limit if limited(limit) else TaskLimit(limit.name) for limit in last.values()]
        params = {
            "names": [g.name for g in given], "concurrency": [g.concurrency for g in given],
            "rate": [g.rate for g in given], "per": [g.per for g in given],
        }  # fmt: skip
        self._rowcount("limits_set", **params)
        self._limits.forget()

    def claim_ahead(
        self, queues: Sequence[str], n: int, lease_s: float, consumer_id: str
    ) -> list[Lease]:
        if n <= 0 or not queues:
            return []
        params = {"queues": list(queues), "n": n, "lease": lease_s, "consumer": consumer_id}
        return self._leases(self._rows("claim_ahead", params))

    def limit_states(self, names: Sequence[str] | None = None) -> list[LimitState]:
        wanted = None if names is None else list(names)
        return [_limit_state(row) for row in self._rows("limit_states", {"names": wanted})]

    def _claim_within_limits(self, params: dict[str, Any]) -> list[tuple[Any, ...]]:
        """The claim under limits, one transaction holding every limit's row: each limited
        name's tasks within its allowance, the others in claim order past them; their starts
        counted. Returns the claimed rows as the `claim` query does."""
        sql = self._sql
        with self._connection() as conn, conn.transaction():
            conn.execute(sql["limits_lock"])
            rows = fetch(conn, sql["limit_states"], {"names": None})
            states = [_limit_state(row) for row in rows]

            def first(full: list[str], picked: list[str], k: int) -> list[tuple[str, str]]:
                query = {"queues": params["queues"], "full": full, "picked": picked, "n": k}
                return [(row[0], row[1]) for row in fetch(conn, sql["claimable"], query)]

            ids = pick(first, allowances(states), params["n"])
            if not ids:
                return []
            rated = [s.limit.name for s in states if s.limit.rate is not None]
            return fetch(conn, sql["claim_ids"], {**params, "ids": ids, "rated": rated})

    def reset_rate(self, key: str) -> None:
        self._rowcount("rate_reset", key=rate_key(key))

    def take_rate(self, key: str, limit: int, per: float) -> bool:
        counted = rate_key(key)
        with self._connection() as conn, conn.transaction():
            prefix = f"scoter.rate.{self.schema}."
            conn.execute(self._sql["unique_lock"], {"prefix": prefix, "keys": [counted]})
            params = {"key": counted, "limit": limit, "per": per}
            return conn.execute(self._sql["rate_take"], params).rowcount == 1


def _limit_state(row: tuple[Any, ...]) -> LimitState:
    name, concurrency, rate, per, running, started, oldest = row
    return state(TaskLimit(name, concurrency, rate, per), running, started, oldest)
