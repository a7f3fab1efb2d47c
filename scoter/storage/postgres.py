"""PostgreSQL storage: consumers on many hosts share one database (`scoter[postgres]` extra).

Claims take queued rows `FOR UPDATE SKIP LOCKED`, in batches; every write of an attempt finds
its row by lease token (fencing); `ack_many_and_claim` (acks and a claim) is one statement.
A statement that writes several rows skips the locked ones (claim, rescue, promote, result
expiry) or locks them in id order (heartbeat, acks, enqueue), so that no two deadlock.
Statements that make tasks claimable NOTIFY, and `wait` LISTENs on a connection of its own, so
idle consumers wake within milliseconds. Producers can enqueue inside their own transaction
(`enqueue_in`), and a task can mark itself done in the transaction of its own writes
(`complete_in`): see docs/postgres.md.

Clocks: lease expiry and eta comparisons use the server's clock, so that consumers on many
hosts agree. A time the caller passes (an eta; `now` for rescue, promote, expire_results) is
read on the caller's clock and sent as its distance from the caller's present, which the
server adds to its own clock: `rescue(time.time())` means the server's now on every host, and
`promote(time.time() + 60)` a minute ahead of it, whatever the hosts' clock skew.

Schema: tables live in a schema of their own (default `scoter`), created on first use, under
an advisory lock so that processes starting together do not race. A schema at an older
version is upgraded only by `scoter migrate` or `PostgresStorage(..., migrate=True)`.

Durability (DESIGN G9): committed means durable; every step is one transaction, and a step
that returned has committed (with PostgreSQL's default `fsync` and `synchronous_commit`).

Forks (DESIGN G10): each call checks the process id; in a fork's child the first call sets the
parent's pool and LISTEN connection aside and opens the child's own. The inherited connections
are never closed there: closing one sends Terminate on the parent's socket. They are kept
referenced (`_INHERITED`), so that they are not collected either (psycopg itself does not
finish a connection collected in another process, but the pool's finalizer waits for its
threads); a pool the caller gave is replaced by one of the storage's own, opened with its
conninfo, kwargs and max_size.
"""

from __future__ import annotations

import functools
import logging
import os
import re
import threading
import time
import urllib.parse
from collections.abc import Collection, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict
from psycopg.pq import TransactionStatus
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool, PoolTimeout

from scoter.config import quote_userinfo, redact
from scoter.exceptions import ConfigurationError
from scoter.states import CORRUPT, State
from scoter.storage._limits import Known
from scoter.storage._postgres_connect import (
    KEEPALIVES,
    REFUSALS,
    Unreachable,
    check_connection,
    configure,
    display_url,
    pool_conninfo,
    pool_kwargs,
    reason,
)
from scoter.storage._postgres_coordination import PostgresCoordination
from scoter.storage._postgres_data import PostgresData
from scoter.storage._postgres_flows import PostgresFlows
from scoter.storage._postgres_rows import rescued_of, task_info
from scoter.storage._postgres_schema import (
    Migration,
    Schema,
    SchemaError,
    SchemaMissing,
    fetch,
)
from scoter.storage._postgres_time import PostgresTime
from scoter.storage._postgres_wait import PostgresWaiting
from scoter.storage._records import AFTER_CORRUPT, COUNTER_MAX, Fields, corrupt_error, last_line
from scoter.storage.base import (
    CALL_TIMEOUT_S,
    CONNECT_TIMEOUT_S,
    EXPIRED,
    SPARED,
    UNSTARTED,
    Ack,
    Lease,
    NewTask,
    Rescued,
    Storage,
    TaskInfo,
    with_flows,
)
from scoter.storage.deadlines import Deadlines

log = logging.getLogger("scoter.storage")

DEFAULT_SCHEMA = "scoter"
SCHEMA_NAME = re.compile(r"[a-z_][a-z0-9_]{0,49}")
POOL_TIMEOUT_S = 5.0
"""How long a call waits for a pooled connection before PoolTimeout (a transient error), at
most: a shorter call timeout bounds the wait too."""
URL_OPTIONS = ("schema", "max_connections", "call_timeout")
COUNTERS = ("attempts", "errors", "interruptions", "crashes")
"""A claimed row's counters, in the order the claim returns them."""
FIRST = "-infinity"
"""Where promote and expire_results start: before every eta and result expiry."""

Connection = psycopg.Connection[Any]
__all__ = ["Migration", "PostgresStorage", "SchemaError", "SchemaMissing"]

_FORK_LOCK = threading.Lock()
_INHERITED: list[object] = []
"""Pools and connections a fork inherited: neither used, closed nor collected in the child."""


class PostgresStorage(
    PostgresData, PostgresFlows, PostgresCoordination, PostgresTime, PostgresWaiting, Storage
):
    """Storage in one PostgreSQL schema. Safe for many threads, processes and hosts at once."""

    transient_errors = (psycopg.OperationalError,)
    """A dropped connection, a server restart or shutdown, PoolTimeout (a subclass), a
    deadlock or serialization failure: the call can be tried again."""
    maintenance_batch = 5000
    """A batch locks only its own rows, and each costs a commit (an fsync, ~10 ms here)."""

    def __init__(
        self,
        conninfo: str = "",
        *,
        pool: ConnectionPool[Any] | None = None,
        schema: str = DEFAULT_SCHEMA,
        migrate: bool = False,
        max_connections: int = 10,
        call_timeout: float = CALL_TIMEOUT_S,
    ) -> None:
        """
        :param conninfo: a libpq URL or connection string: postgresql://user@host:5432/db.
        :param pool: a psycopg_pool.ConnectionPool to use instead; the caller closes it.
        :param schema: the schema holding scoter's tables (lowercase letters, digits, _).
        :param migrate: upgrade an older schema on first use (else refused: `scoter migrate`).
        :param max_connections: the size limit of the pool this storage opens.
        :param call_timeout: seconds a call waits for PostgreSQL's reply before it fails as
            an outage (its socket is shut down: psycopg waits as long as a socket is open);
            also the server's `statement_timeout` and libpq's `tcp_user_timeout`.
        """
        if not SCHEMA_NAME.fullmatch(schema):
            raise ConfigurationError(
                f"bad schema name {schema!r}: use up to 50 lowercase letters, digits and _"
            )
        if pool is not None and conninfo:
            raise ValueError("give conninfo or pool, not both")
        self.schema = schema
        self.url = display_url(conninfo or pool_conninfo(pool))
        self._conninfo = conninfo
        self._given_pool = pool
        self._pool = pool
        self._owns_pool = pool is None
        self._pid = os.getpid()
        self._migrate = migrate
        self._max_connections = max_connections
        self._deadlines = Deadlines(call_timeout)
        self._ready = False
        self._ready_lock = threading.Lock()
        self._channel = f"{schema}.tasks"
        self._schema = Schema(schema)
        self._sql = self._schema.sql
        self._listener: Connection | None = None
        self._listen_lock = threading.Lock()
        self._limits = Known(self._any_limits)

    @classmethod
    def from_url(cls, url: str) -> PostgresStorage:
        """postgresql://user:password@host:5432/db?schema=scoter&max_connections=10; any other
        query option goes to libpq (sslmode=require, connect_timeout=5, ...)."""
        parts = urllib.parse.urlsplit(quote_userinfo(url))
        query = urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
        ours = {k: v for k, v in query if k in URL_OPTIONS}
        libpq = urllib.parse.urlencode([(k, v) for k, v in query if k not in URL_OPTIONS])
        try:
            max_connections = int(ours.get("max_connections", 10))
        except ValueError:
            raise ConfigurationError("max_connections must be a whole number") from None
        try:
            call_timeout = float(ours.get("call_timeout", CALL_TIMEOUT_S))
        except ValueError:
            raise ConfigurationError("call_timeout must be a number of seconds") from None
        storage = cls(
            urllib.parse.urlunsplit(parts._replace(query=libpq)),
            schema=ours.get("schema", DEFAULT_SCHEMA),
            max_connections=max_connections,
            call_timeout=call_timeout,
        )
        storage.url = redact(url)
        return storage

    # -- connections and the schema --------------------------------------------------------

    @contextmanager
    def _connection(self) -> Iterator[Connection]:
        """A pooled connection, for calls that must end within the call timeout."""
        with self._ready_pool().connection() as conn, self._deadlines.call(conn.fileno()) as call:
            try:
                yield conn
            except psycopg.OperationalError as exc:
                if not call.expired:
                    raise
                seconds = self._deadlines.seconds
                raise psycopg.OperationalError(
                    f"no reply from PostgreSQL within {seconds:g} s (call_timeout): {exc}"
                ) from exc

    def _ready_pool(self) -> ConnectionPool[Any]:
        """This process's pool, once the schema is ready."""
        self._settle_fork()
        pool = self._pool
        return pool if self._ready and pool is not None else self._prepare()

    def _settle_fork(self) -> None:
        """In a fork's child, once: set the parent's pool and LISTEN connection aside, unclosed,
        and start afresh (locks too: a thread the child does not have may have held one)."""
        if self._pid == os.getpid():
            return
        with _FORK_LOCK:
            if self._pid == os.getpid():
                return
            _INHERITED.extend(c for c in (self._pool, self._listener) if c is not None)
            self._pool = self._listener = None
            self._owns_pool = True
            self._ready = False
            self._ready_lock = threading.Lock()
            self._listen_lock = threading.Lock()
            self._pid = os.getpid()

    def _open_pool(self) -> ConnectionPool[Any]:
        if self._pool is None:
            conninfo, kwargs = self._connect_args()
            given = self._given_pool
            self._pool = ConnectionPool(
                conninfo, min_size=1, kwargs=kwargs, configure=configure,
                max_size=self._max_connections if given is None else given.max_size,
                timeout=min(POOL_TIMEOUT_S, self._deadlines.seconds),
                name=f"scoter.{self.schema}", open=True,
            )  # fmt: skip
        return self._pool

    def _connect_args(self) -> tuple[str, dict[str, Any]]:
        """conninfo and options of the connections this storage opens (its pool's, unless the
        caller gave one; the LISTEN connection): autocommit, a connect timeout."""
        if self._given_pool is not None:
            kwargs = {**pool_kwargs(self._given_pool), "autocommit": True}
            return pool_conninfo(self._given_pool), kwargs
        given = conninfo_to_dict(self._conninfo)
        timeout_ms = round(self._deadlines.seconds * 1000)
        defaults: dict[str, Any] = {
            "connect_timeout": round(CONNECT_TIMEOUT_S), **KEEPALIVES,
            "tcp_user_timeout": timeout_ms, "options": f"-c statement_timeout={timeout_ms}",
        }  # fmt: skip
        return self._conninfo, {
            "autocommit": True,
            **{k: v for k, v in defaults.items() if k not in given},
        }

    def _prepare(self) -> ConnectionPool[Any]:
        """The pool, once the schema is there at this scoter's version (created if absent)."""
        with self._ready_lock:
            self._ensure_schema(create=True)
            return self._open_pool()

    def check(self, *, create: bool = True) -> None:
        """Connect once outside the pool (whose own errors only say it timed out) and check
        the schema: created if absent, unless `create` is False."""
        self._settle_fork()
        with self._ready_lock:
            self._ensure_schema(create=create)

    def _ensure_schema(self, *, create: bool) -> None:
        """Check the schema once, holding `_ready_lock`."""
        if not self._ready:
            with self._probe() as conn:
                self._schema.check(conn, self._migrate, create=create, url=self.url)
            self._ready = True

    def _probe(self) -> Connection:
        """A connection of its own, whose failure says why: a refused configuration raises
        ConfigurationError, an outage an OperationalError naming the server and the cause."""
        conninfo, kwargs = self._connect_args()
        try:
            return psycopg.Connection.connect(conninfo, **kwargs)
        except psycopg.OperationalError as exc:
            refused = self.misconfigured(exc)
            if refused is not None:
                raise refused from exc
            raise Unreachable(f"cannot reach {self.url}: {reason(exc)}") from exc
        except psycopg.ProgrammingError as exc:  # a connection option libpq does not know
            raise ConfigurationError(f"bad PostgreSQL URL {self.url}: {reason(exc)}") from exc

    def misconfigured(self, exc: BaseException) -> ConfigurationError | None:
        """A connection the server refused: no such database or role, a wrong password, no
        pg_hba.conf entry, TLS required by one side only."""
        if isinstance(exc, psycopg.OperationalError) and not isinstance(exc, PoolTimeout):
            why = reason(exc)
            if any(refusal in why for refusal in REFUSALS):
                return ConfigurationError(
                    f"PostgreSQL at {self.url} refuses this connection: {why}; check the "
                    "user, password and database of the URL"
                )
        return None

    def migrate(self) -> list[str]:
        """Create the schema, or bring it to this scoter's version; the migrations applied."""
        self._settle_fork()
        with self._ready_lock, self._probe() as conn:
            self._schema.refuse_newer(self._schema.version(conn))
            applied = self._schema.apply(conn)
            self._ready = True
        return applied

    def close(self) -> None:
        self._settle_fork()
        if self._listen_lock.acquire(timeout=5):
            self._close_listener()
            self._listen_lock.release()
        if self._pool is not None and self._owns_pool:
            self._pool.close()
            self._pool = None
        self._ready = False

    def _rows(self, query: str, params: dict[str, Any]) -> list[tuple[Any, ...]]:
        with self._connection() as conn:
            return fetch(conn, self._sql[query], params)

    def _one(self, query: str, **params: Any) -> tuple[Any, ...]:
        return self._rows(query, params)[0]

    def _rowcount(self, query: str, **params: Any) -> int:
        with self._connection() as conn:
            return conn.execute(self._sql[query], params).rowcount

    # -- producers -------------------------------------------------------------------------

    def not_stored(self, exc: Exception) -> bool:
        """A call that found no connection in the pool, or could not open one, sent nothing."""
        return isinstance(exc, (PoolTimeout, Unreachable))

    def enqueue(self, tasks: Sequence[NewTask], *, restart_finished: bool = True) -> int:
        with self._connection() as conn:
            return self._enqueue(conn, tasks, restart_finished)

    def enqueue_in(self, conn: Connection, tasks: Sequence[NewTask]) -> int:
        """`enqueue` inside the caller's transaction on `conn` (a psycopg 3 connection).

        The tasks, and the wake-up of consumers, exist only once that transaction commits; a
        rollback leaves no trace. Returns how many were stored, as `enqueue`.
        """
        check_connection(conn)
        self._ready_pool()
        return self._enqueue(conn, tasks)

    def _enqueue(
        self, conn: Connection, tasks: Sequence[NewTask], restart_finished: bool = True
    ) -> int:
        first: dict[str, NewTask] = {}
        for task in tasks:
            first.setdefault(task.id, task)  # a batch that repeats an id stores the first
        if not first:
            return 0
        now = time.time()
        rows = list(first.values())
        params = {
            "ids": [t.id for t in rows], "names": [t.name for t in rows],
            "queues": [t.queue for t in rows], "payloads": [t.payload for t in rows],
            "priorities": [t.priority for t in rows], "max_crashes": [t.max_crashes for t in rows],
            "aheads": [None if t.eta is None else t.eta - now for t in rows],
            "channel": self._channel, "restart": restart_finished,
        }  # fmt: skip
        return int(fetch(conn, self._sql["enqueue"], params)[0][0])

    def enqueue_slot(
        self, schedule: str, last: int | None, slot: int, tasks: Sequence[NewTask]
    ) -> bool:
        """The compare-and-set and the enqueue in one transaction."""
        query = self._sql["slot_insert" if last is None else "slot_advance"]
        params = {"schedule": schedule, "slot": slot, "last": last}
        with self._connection() as conn, conn.transaction():
            if conn.execute(query, params).rowcount != 1:
                return False
            self._enqueue(conn, tasks, restart_finished=False)
            return True

    def last_slots(self, schedules: Sequence[str]) -> dict[str, int]:
        rows = self._rows("last_slots", {"schedules": list(schedules)})
        return {schedule: int(slot) for schedule, slot in rows}

    # -- consumers -------------------------------------------------------------------------

    def claim(self, queues: Sequence[str], n: int, lease_s: float, consumer_id: str) -> list[Lease]:
        if n <= 0 or not queues:
            return []
        params = {"queues": list(queues), "n": n, "lease": lease_s, "consumer": consumer_id}
        if self._limits.any():
            return self._leases(self._claim_within_limits(params))
        return self._leases(self._rows("claim", params))

    def ack_many_and_claim(
        self, acks: Sequence[Ack], queues: Sequence[str], n: int, lease_s: float, consumer_id: str
    ) -> tuple[list[bool], list[Lease]]:
        """One statement: one round trip and one commit for every ack and the claim (under
        limits, the acks and then the claim)."""
        if not queues:
            n = 0
        if n > 0 and self._limits.any():
            acked, _ = self.ack_many_and_claim(acks, queues, 0, lease_s, consumer_id)
            return acked, self.claim(queues, n, lease_s, consumer_id)
        if with_flows(acks):
            return self._ack_flows_and_claim(acks, queues, n, lease_s, consumer_id)
        if len(acks) == 1 and n <= 0:
            a = acks[0]
            return [self.ack(a.token, a.result, a.result_ttl)], []
        if not acks and n <= 0:
            return [], []
        first: dict[str, int] = {}  # each token's first position: a repeated one lands once
        for i, a in enumerate(acks):
            first.setdefault(a.token, i)
        sent = [acks[i] for i in first.values()]
        params = {
            "tokens": [a.token for a in sent], "results": [a.result for a in sent],
            "result_ttls": [None if a.result_ttl is None else float(a.result_ttl) for a in sent],
            "queues": list(queues), "n": max(n, 0), "lease": lease_s, "consumer": consumer_id,
        }  # fmt: skip
        rows = self._rows("ack_many_and_claim", params)
        landed = set(rows[0][0] or ())
        acked = [False] * len(acks)
        for position, i in enumerate(first.values(), 1):
            acked[i] = position in landed
        return acked, self._leases([row[1:] for row in rows if row[1] is not None])

    def _leases(self, rows: list[tuple[Any, ...]]) -> list[Lease]:
        """Leases from claimed rows (… priority, max_crashes, seq last), highest priority
        then oldest first. A row whose counters are out of range (one more would not fit an
        integer, or below 0) is quarantined instead, dead `corrupt` (DESIGN G11)."""
        fit = [row for row in rows if self._fit(row)]
        fit.sort(key=lambda r: (-r[12], r[14]))
        return [Lease(*row[:14]) for row in fit]

    def _fit(self, row: tuple[Any, ...]) -> bool:
        if 0 < row[6] <= COUNTER_MAX and all(0 <= n <= COUNTER_MAX for n in row[7:10]):
            return True
        fields = Fields(dict(zip(COUNTERS, row[6:10], strict=True)))
        fields.integer("attempts", 1, COUNTER_MAX)
        for name in COUNTERS[1:]:
            fields.counter(name)
        error = corrupt_error(fields.problems)
        log.error("task %s: %s", row[1], error)
        self.dead(row[0], CORRUPT, error)
        return False

    def heartbeat(self, tokens: Iterable[str], lease_s: float) -> set[str]:
        wanted = set(tokens)
        if not wanted:
            return set()
        held = self._rows("heartbeat", {"tokens": list(wanted), "lease": lease_s})
        return wanted - {row[0] for row in held}

    def ack(self, token: str, result: bytes | None, result_ttl: float | None) -> bool:
        return self._rowcount("ack", token=token, result=result, result_ttl=result_ttl) == 1

    def complete_in(
        self, conn: Connection, token: str, result: bytes | None, result_ttl: float | None
    ) -> bool:
        """`ack` inside the caller's transaction on `conn`, fenced by `token`.

        False when the token no longer holds its lease: the caller must roll back. The row
        stays locked until the transaction ends, so no other write can slip in between.
        """
        check_connection(conn)
        if conn.autocommit and conn.info.transaction_status == TransactionStatus.IDLE:
            raise ValueError(
                "complete_in must run in the transaction of the task's own writes: "
                "`with conn.transaction(): ...; ctx.complete_in(conn)`"
            )
        self._ready_pool()
        params = {"token": token, "result": result, "result_ttl": result_ttl}
        with conn.cursor() as cursor:
            return cursor.execute(self._sql["ack"], params).rowcount == 1

    def retry(self, token: str, eta: float, error: str) -> bool:
        params = {
            "token": token, "ahead": eta - time.time(), "error": error,
            "detail": last_line(error), "channel": self._channel,
        }  # fmt: skip
        return bool(self._rows("retry", params)[0][0] == 1)

    def release(self, token: str, reason: str, delay: float = 0.0) -> bool:
        params = {"token": token, "reason": reason, "delay": delay, "channel": self._channel}
        return bool(self._rows("release", params)[0][0] == 1)

    def dead(self, token: str, reason: str, error: str | None) -> bool:
        params = {"token": token, "reason": reason, "error": error, "detail": last_line(error)}
        return self._rowcount("dead", **params) == 1

    def checkpoint(self, token: str, state: bytes) -> bool:
        return self._rowcount("checkpoint", token=token, state=state) == 1

    def hand_back(self, consumer_id: str, queues: Sequence[str], keep: Collection[str]) -> int:
        params = {"consumer": consumer_id, "queues": list(queues), "keep": list(keep),
                  "detail": UNSTARTED, "channel": self._channel}  # fmt: skip
        return int(self._rows("hand_back", params)[0][0])

    def progress(self, token: str, done: int, total: int) -> bool:
        return self._rowcount("progress", token=token, done=done, total=total) == 1

    def isolate(self, token: str) -> bool:
        return self._rowcount("isolate", token=token) == 1

    def crash(self, token: str, detail: str) -> Rescued | None:
        params = {"token": token, "detail": detail, "spared": None, "channel": self._channel}
        rows = self._rows("crash", params)
        return rescued_of(rows[0]) if rows else None

    def rescue(self, now: float) -> list[Rescued]:
        self._quarantine("quarantine_running")
        return self.in_list_batches(functools.partial(self._rescue, now))

    def _rescue(self, now: float, limit: int) -> list[Rescued]:
        params = {"ahead": now - time.time(), "detail": EXPIRED, "spared": SPARED, "limit": limit}
        return [
            rescued_of(row) for row in self._rows("rescue", {**params, "channel": self._channel})
        ]

    def promote(self, now: float) -> int:
        self._quarantine("quarantine_scheduled")
        return self.in_ordered_batches(functools.partial(self._due, "promote", now), FIRST)

    def _due(self, query: str, now: float, after: Any, limit: int) -> tuple[int, Any]:
        """A batch of promote or expire_results, in the order of the time they compare with
        `now`: how many it took, the last time it read (`in_ordered_batches`)."""
        params = {"ahead": now - time.time(), "after": after, "limit": limit}
        taken, last = self._one(query, **params, channel=self._channel)[:2]
        return int(taken), last

    def _quarantine(self, query: str) -> None:
        """Quarantine the tasks that a maintenance step could never move (DESIGN G11)."""
        for task_id, name, error in self._rows(query, {"after": AFTER_CORRUPT}):
            log.error("task %s (%s): %s", task_id, name, error)

    # -- results and inspection ------------------------------------------------------------

    def get(self, task_id: str) -> TaskInfo | None:
        with self._connection() as conn, conn.cursor(row_factory=dict_row) as cursor:
            row = cursor.execute(self._sql["get"], {"id": task_id}).fetchone()
        return None if row is None else task_info(row)

    def counts(self) -> dict[tuple[str, State], int]:
        rows = self._rows("counts", {})
        return {(queue, State(state)): int(n) for queue, state, n in rows}

    def list_tasks(
        self, state: State, queue: str | None = None, limit: int = 100
    ) -> list[TaskInfo]:
        params = {"state": state.value, "queue": queue, "limit": limit}
        with self._connection() as conn, conn.cursor(row_factory=dict_row) as cursor:
            rows = cursor.execute(self._sql["list"], params).fetchall()
        return [task_info(row) for row in rows]

    def requeue_dead(self, ids: Sequence[str] | None = None) -> int:
        if ids is None:
            batch = functools.partial(self._in_id_order, "requeue_dead", channel=self._channel)
            return self.in_ordered_batches(batch, "")
        return self.in_id_batches(
            ids, lambda chunk: self._one("requeue_dead_ids", ids=chunk, channel=self._channel)[0]
        )

    def purge(self, state: State, ids: Sequence[str] | None = None) -> int:
        if ids is None:
            batch = functools.partial(self._in_id_order, "purge", state=state.value)
            return self.in_ordered_batches(batch, "")
        return self.in_id_batches(
            ids, lambda chunk: self._rowcount("purge_ids", state=state.value, ids=chunk)
        )

    def _in_id_order(self, query: str, after: str, limit: int, **params: Any) -> tuple[int, Any]:
        """A batch in id order: how many it took, the last id it read (`in_ordered_batches`)."""
        taken, last = self._one(query, after=after, limit=limit, **params)[:2]
        return int(taken), last

    def expire_results(self, now: float) -> int:
        return self.in_ordered_batches(functools.partial(self._due, "expire_results", now), FIRST)

    def find_tasks(self, name: str, state: State | None = None, limit: int = 100) -> list[TaskInfo]:
        params = {"name": name, "state": state and state.value, "limit": max(limit, 0)}
        with self._connection() as conn, conn.cursor(row_factory=dict_row) as cursor:
            rows = cursor.execute(self._sql["find"], params).fetchall()
        return [task_info(row) for row in rows]
