"""SQLite storage: the embedded default. One file that many processes on one host share.

WAL journal, a connection per thread, one statement (or one `BEGIN IMMEDIATE` transaction) per
lifecycle step, `UPDATE … RETURNING` claims; an idle consumer sleeps until the file changes.

Durability (DESIGN G9): with the default `synchronous=NORMAL` a committed step survives any
crash of the process — SIGKILL, OOM — and only a power cut can undo the last commits;
`?synchronous=full` makes every commit survive power loss too, at the price of an fsync per
commit.

Forks (DESIGN G10): a process uses only connections it opened itself. Each call checks the
process id (a cheap system call, ~0.1 µs); the first call in a fork's child gives every storage
of the process new connections and closes the inherited ones without letting SQLite checkpoint
(`_sqlite_process` says why both are needed). `os.fork` waits for the calls in progress, so that
none is half done in the child, and the child settles at once; the check per call covers forks
that skip Python's fork hooks.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Collection, Iterable, Sequence
from typing import Any

from scoter.states import CORRUPT, State
from scoter.storage._inotify import FileWatch
from scoter.storage._limits import Known
from scoter.storage._records import (
    AFTER_CORRUPT,
    Fields,
    corrupt_error,
    last_line,
    printable,
)
from scoter.storage._sql import load_queries
from scoter.storage._sqlite_coordination import SQLiteCoordination
from scoter.storage._sqlite_data import SQLiteData
from scoter.storage._sqlite_flows import SQLiteFlows
from scoter.storage._sqlite_process import FORK_LOCK, STORAGES, Here, Transaction, settle_fork
from scoter.storage._sqlite_rows import (
    as_is,
    enqueue_rows,
    lease_problems,
    rescued,
    statements,
    taken,
    task_info,
    text_as_stored,
)
from scoter.storage._sqlite_time import SQLiteTime
from scoter.storage.base import (
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

log = logging.getLogger("scoter.storage")

FRAGMENTS = (
    "history", "entry", "history_limit", "revocations_table", "coordination", "lock_held",
    "flows_schema", "data_schema",
)  # fmt: skip
"""Queries of the .sql files that are parts of others, which name them in braces."""
SCHEMA_VERSION = 7
"""The file's PRAGMA user_version at this scoter's schema; files made before it have 0."""
VACUUM_PAGES = 100
"""Free pages one step of `shrink` gives back to the file system (the pages moved to fill
their places cost about as much as a batch of a maintenance step)."""
SYNCHRONOUS_MODES = ("normal", "full")
WAIT_STEP_S = 0.025
"""Where the system cannot report the file's changes (no inotify), how often `wait` looks for
commits of other connections (a cheap PRAGMA, no table read). The wake-ups themselves are an
idle consumer's CPU: ~0.6 % of a core at this step; half a step is the idle latency it adds."""
RECHECK_S = 0.005
"""How soon `wait` looks again after a write that showed no commit yet (or an earlier write)."""
UNDECODABLE = "Could not decode to UTF-8"
"""How sqlite3's OperationalError starts when a stored text is not UTF-8: the value's fault,
not an outage."""


SQL_FILES = (
    "sqlite.sql", "sqlite_time.sql", "sqlite_coordination.sql", "sqlite_flows.sql",
    "sqlite_data.sql",
)  # fmt: skip
"""The named queries: the lifecycle and inspection, then revocation, coordination, flows,
key-value data."""


def _render(queries: dict[str, str]) -> dict[str, str]:
    """The queries with the fragments they name in braces put in (comments left out)."""
    fragments = {
        f"{{{name}}}": "\n".join(
            line for line in queries.pop(name).splitlines() if not line.startswith("--")
        )
        for name in FRAGMENTS
    }
    for name, sql in queries.items():
        for placeholder, fragment in fragments.items():
            sql = sql.replace(placeholder, fragment)
        queries[name] = sql
    return queries


SQL = _render(load_queries(*SQL_FILES))


class SQLiteStorage(SQLiteData, SQLiteFlows, SQLiteCoordination, SQLiteTime, Storage):
    """Storage in one SQLite file. Safe for many threads and processes at once."""

    transient_errors = (sqlite3.OperationalError,)  # locked past the timeout, disk I/O
    _queries = SQL

    def __init__(self, path: str, *, synchronous: str = "normal", timeout: float = 30.0) -> None:
        if synchronous not in SYNCHRONOUS_MODES:
            raise ValueError(f"synchronous must be one of {SYNCHRONOUS_MODES}, not {synchronous!r}")
        self.path = path
        self._file = os.path.abspath(path)  # a later chdir does not move the database
        self.url = f"sqlite:///{self._file}"
        """The file's absolute path: a relative one depends on the working directory."""
        self._synchronous = synchronous
        self._timeout = timeout
        self._here = Here()
        self._limits = Known(self._any_limits)
        with FORK_LOCK:
            settle_fork()  # a storage opened in a fork's child: the inherited ones go first
            STORAGES.add(self)
        self._create_schema()

    # -- connections -----------------------------------------------------------------------

    def _process(self) -> Here:
        """This process's connections, locks and watches."""
        here = self._here
        if here.pid != os.getpid():
            with FORK_LOCK:
                settle_fork()
            here = self._here
        return here

    def _connection(self, here: Here) -> sqlite3.Connection:
        """This thread's connection."""
        db: sqlite3.Connection | None = getattr(here.local, "db", None)
        if db is None:
            db = here.local.db = self._connect(here)
        return db

    @property
    def _db(self) -> sqlite3.Connection:
        return self._connection(self._process())

    @property
    def _watches(self) -> list[FileWatch]:
        return self._process().watches

    def _connect(self, here: Here) -> sqlite3.Connection:
        with here.lock:
            db = sqlite3.connect(
                self._file, timeout=self._timeout, isolation_level=None, check_same_thread=False
            )
            here.connections.append(db)
            if db.execute("PRAGMA page_count").fetchone()[0] == 0:
                # A new file, before WAL mode writes its first page: its free pages can go back
                # to the system (`shrink`). (On a file, setting it is a write: never done.)
                db.execute("PRAGMA auto_vacuum=INCREMENTAL")
            db.execute("PRAGMA journal_mode=WAL")
            db.execute(f"PRAGMA synchronous={self._synchronous.upper()}")
        return db

    def _transaction(self) -> Transaction:
        here = self._process()
        return Transaction(self._connection(here), here.lock)

    def _write(
        self, query: str, params: dict[str, Any], *, lenient: bool = False
    ) -> tuple[list[Any], int]:
        """Run one writing statement to its end: (rows it returned, rows it changed).

        Threads of this process take turns here, so they never meet in SQLite's busy handler
        (which sleeps); other processes still wait for the file lock there. `lenient`: text
        that is not UTF-8 is returned with surrogate escapes instead of failing the fetch,
        after the statement changed its rows.
        """
        here = self._process()
        with here.lock:
            db = self._connection(here)
            with text_as_stored(db) if lenient else as_is():
                cursor = db.execute(SQL[query], params)
                return cursor.fetchall(), cursor.rowcount

    def _in_transaction(self, steps: Sequence[tuple[str, dict[str, Any]]]) -> list[list[Any]]:
        """Run named statements in one write transaction; the rows each returned."""
        with self._transaction() as db:
            return [db.execute(SQL[query], params).fetchall() for query, params in steps]

    def _read(self, query: str, params: dict[str, Any]) -> tuple[sqlite3.Cursor, list[Any]]:
        """Run one reading statement to its end: (its cursor, the rows). Read again with
        surrogate escapes when a stored text is not UTF-8."""
        here = self._process()
        with here.lock:
            db = self._connection(here)
            try:
                cursor = db.execute(SQL[query], params)
                return cursor, cursor.fetchall()
            except sqlite3.OperationalError as exc:
                if not str(exc).startswith(UNDECODABLE):
                    raise
            with text_as_stored(db):
                cursor = db.execute(SQL[query], params)
                return cursor, cursor.fetchall()

    def close(self) -> None:
        here = self._process()
        with here.lock:
            for db in here.connections:
                db.close()
            here.connections.clear()
            for watch in here.watches:
                watch.close()
            here.watches.clear()
            here.local = threading.local()

    def _create_schema(self) -> None:
        """Create the tables, or bring an older file's up to SCHEMA_VERSION: one write
        transaction, so that processes opening the file together change it once."""
        with self._transaction() as db:
            version = db.execute("PRAGMA user_version").fetchone()[0]
            if version >= SCHEMA_VERSION:
                return
            if db.execute(SQL["has_tasks"]).fetchone() is None:
                scripts = [SQL["schema"]]
            else:
                scripts = [SQL[f"upgrade_to_{v}"] for v in range(version + 1, SCHEMA_VERSION + 1)]
            for script in scripts:
                for statement in statements(script):
                    db.execute(statement)
            db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    # -- producers and consumers -----------------------------------------------------------

    def not_stored(self, exc: Exception) -> bool:
        return isinstance(exc, self.transient_errors)  # a failed transaction rolled back

    def enqueue(self, tasks: Sequence[NewTask], *, restart_finished: bool = True) -> int:
        rows = enqueue_rows(tasks, time.time(), restart_finished)
        with self._transaction() as db:
            before = db.total_changes
            db.executemany(SQL["enqueue"], rows)
            return db.total_changes - before

    def enqueue_slot(
        self, schedule: str, last: int | None, slot: int, tasks: Sequence[NewTask]
    ) -> bool:
        now = time.time()
        params = {"schedule": schedule, "slot": slot, "last": last, "now": now}
        rows = enqueue_rows(tasks, now, restart=False)
        with self._transaction() as db:
            query = "slot_insert" if last is None else "slot_advance"
            if db.execute(SQL[query], params).rowcount != 1:
                return False
            db.executemany(SQL["enqueue"], rows)
            return True

    def last_slots(self, schedules: Sequence[str]) -> dict[str, int]:
        _, rows = self._read("last_slots", {"schedules": json.dumps(list(schedules))})
        return {schedule: slot for schedule, slot in rows}

    def claim(self, queues: Sequence[str], n: int, lease_s: float, consumer_id: str) -> list[Lease]:
        return self._claim(queues, n, lease_s, consumer_id, ahead=False)

    def claim_ahead(
        self, queues: Sequence[str], n: int, lease_s: float, consumer_id: str
    ) -> list[Lease]:
        return self._claim(queues, n, lease_s, consumer_id, ahead=True)

    def _claim(
        self, queues: Sequence[str], n: int, lease_s: float, consumer_id: str, *, ahead: bool
    ) -> list[Lease]:
        """`claim`, or with `ahead` `claim_ahead` (its own statement)."""
        if n <= 0:
            return []
        now = time.time()
        expires = now + lease_s
        params = {"consumer": consumer_id, "expires": expires, "now": now, "n": n}
        try:
            if ahead:
                rows, _ = self._write("claim_ahead", {**params, "queues": json.dumps(list(queues))})
            elif self._limits.any():
                rows = self._claim_limited(queues, params)
            elif len(queues) == 1:
                rows, _ = self._write("claim_one_queue", {**params, "queue": queues[0]})
            else:
                rows, _ = self._write("claim", {**params, "queues": json.dumps(list(queues))})
        except sqlite3.OperationalError as exc:
            if not str(exc).startswith(UNDECODABLE):
                raise
            # The claim landed, then a text that is not UTF-8 failed its reply: read it again.
            rows, _ = self._write("claimed", params, lenient=True)
        rows = [row for row in rows if self._fit(row)]
        rows.sort(key=lambda r: (-r[11], r[12]))
        return [
            Lease(r[0], r[1], r[2], r[3], r[4], expires, r[5], r[6], r[7], r[8], r[9],
                  bool(r[10]), r[11], r[13])
            for r in rows
        ]  # fmt: skip

    def _claim_limited(self, queues: Sequence[str], params: dict[str, Any]) -> list[Any]:
        """The claim under limits (`_claim_within_limits`), in the caller's transaction if
        one is open (`ack_many_and_claim`), else in one of its own."""
        here = self._process()
        with here.lock:
            db = self._connection(here)
            if db.in_transaction:
                return self._claim_within_limits(db, queues, params)
            with Transaction(db, here.lock):
                return self._claim_within_limits(db, queues, params)

    def _fit(self, row: tuple[Any, ...]) -> bool:
        """Whether a claimed row can run: else it is quarantined, dead `corrupt` (G11)."""
        problems = lease_problems(row)
        if not problems:
            return True
        error = corrupt_error(problems)
        log.error("task %s: %s", printable(str(row[1])), error)
        self.dead(row[0], CORRUPT, error)
        return False

    def heartbeat(self, tokens: Iterable[str], lease_s: float) -> set[str]:
        wanted = set(tokens)
        if not wanted:
            return set()
        params = {"expires": time.time() + lease_s, "tokens": json.dumps(list(wanted))}
        held = {r[0] for r in self._write("heartbeat", params)[0]}
        return wanted - held

    def _fenced(self, query: str, **params: Any) -> bool:
        params["now"] = time.time()
        return self._write(query, params)[1] == 1

    def ack(self, token: str, result: bytes | None, result_ttl: float | None) -> bool:
        expires = None if result_ttl is None else time.time() + result_ttl
        return self._fenced("ack", token=token, result=result, result_expires=expires)

    def ack_many_and_claim(
        self, acks: Sequence[Ack], queues: Sequence[str], n: int, lease_s: float, consumer_id: str
    ) -> tuple[list[bool], list[Lease]]:
        """One write transaction (one lock, one commit): each ack's own `ack` statement, then
        the claim. (One statement per ack measured as fast as one UPDATE … FROM for them all.)"""
        if not acks:
            return [], self.claim(queues, n, lease_s, consumer_id)
        if with_flows(acks):
            return self._ack_flows_and_claim(acks, queues, n, lease_s, consumer_id)
        if len(acks) == 1 and n <= 0:
            a = acks[0]
            return [self.ack(a.token, a.result, a.result_ttl)], []
        ack = SQL["ack"]
        with self._transaction() as db:
            now = time.time()
            acked = [
                db.execute(ack, {
                    "token": a.token, "result": a.result, "now": now,
                    "result_expires": None if a.result_ttl is None else now + a.result_ttl,
                }).rowcount == 1
                for a in acks
            ]  # fmt: skip
            return acked, self.claim(queues, n, lease_s, consumer_id)

    def retry(self, token: str, eta: float, error: str) -> bool:
        return self._fenced("retry", token=token, eta=eta, error=error, detail=last_line(error))

    def release(self, token: str, reason: str, delay: float = 0.0) -> bool:
        return self._fenced("release", token=token, reason=reason, delay=max(delay, 0.0))

    def dead(self, token: str, reason: str, error: str | None) -> bool:
        detail = last_line(error)
        return self._fenced("dead", token=token, reason=reason, error=error, detail=detail)

    def checkpoint(self, token: str, state: bytes) -> bool:
        return self._fenced("checkpoint", token=token, state=state)

    def isolate(self, token: str) -> bool:
        return self._fenced("isolate", token=token)

    def rescue(self, now: float) -> list[Rescued]:
        self._quarantine("quarantine_running", "lease_expires")
        return self.in_list_batches(functools.partial(self._rescue, now))

    def _rescue(self, now: float, limit: int) -> list[Rescued]:
        params = {"token": None, "now": now, "detail": EXPIRED, "spared": SPARED, "limit": limit}
        return [rescued(row) for row in self._write("crash", params, lenient=True)[0]]

    def crash(self, token: str, detail: str) -> Rescued | None:
        params = {"token": token, "now": time.time(), "detail": detail, "spared": None, "limit": 0}
        rows, _ = self._write("crash", params, lenient=True)
        return rescued(rows[0]) if rows else None

    def _quarantine(self, query: str, field: str) -> None:
        """Quarantine the tasks whose `field` (a time) no maintenance step could read."""
        rows, _ = self._write(query, {"now": time.time(), "after": AFTER_CORRUPT}, lenient=True)
        for task_id, name in rows:
            log.error("task %s (%s) is dead `corrupt`: its %s is not a time",
                      printable(str(task_id)), printable(str(name)), field)  # fmt: skip

    def hand_back(self, consumer_id: str, queues: Sequence[str], keep: Collection[str]) -> int:
        params = {
            "consumer": consumer_id, "queues": json.dumps(list(queues)),
            "keep": json.dumps(list(keep)), "detail": UNSTARTED, "now": time.time(),
        }  # fmt: skip
        return self._write("hand_back", params)[1]

    def progress(self, token: str, done: int, total: int) -> bool:
        return self._fenced("progress", token=token, progress=json.dumps([done, total]))

    def promote(self, now: float) -> int:
        self._quarantine("quarantine_scheduled", "eta")
        return self.in_batches(lambda limit: self._changed("promote", now=now, limit=limit))

    def wait(self, queues: Sequence[str], timeout: float) -> None:
        """Sleep until another connection commits (PRAGMA data_version) or `timeout` passes.

        Woken by the writes to the database's files where the system reports them (inotify),
        else looking every WAIT_STEP_S. The watch is opened before the version is read, so a
        commit between the two still wakes it. A writer makes its commit visible only after
        its last write to the file, so a write seen with no new version is looked at again
        after RECHECK_S (or at the next write)."""
        watch = self._watch()
        version = self._data_version()
        deadline = time.monotonic() + timeout
        recheck = False
        while (left := deadline - time.monotonic()) > 0:
            if watch is None:
                time.sleep(min(WAIT_STEP_S, left))
            else:
                recheck = watch.wait(min(RECHECK_S, left) if recheck else left)
            if self._data_version() != version:
                return

    def _data_version(self) -> int:
        """A number that changes when another connection commits (per connection: this
        thread's)."""
        here = self._process()
        with here.lock:
            return int(self._connection(here).execute("PRAGMA data_version").fetchone()[0])

    def _watch(self) -> FileWatch | None:
        """This thread's watch of the database file and its WAL (None: the system has none)."""
        here = self._process()
        try:
            watch: FileWatch | None = here.local.watch
        except AttributeError:
            folder, name = os.path.split(self._file)
            watch = here.local.watch = FileWatch.open(folder, (name, f"{name}-wal"))
            if watch is not None:
                with here.lock:
                    here.watches.append(watch)
        return watch

    # -- results and inspection ------------------------------------------------------------

    def get(self, task_id: str) -> TaskInfo | None:
        cursor, rows = self._read("get", {"id": task_id})
        return task_info(cursor, rows[0]) if rows else None

    def counts(self) -> dict[tuple[str, State], int]:
        found: dict[tuple[str, State], int] = {}
        for queue, state, n in self._read("counts", {})[1]:
            fields = Fields({"queue": queue, "state": state})
            key = (fields.text("queue"), fields.state())
            found[key] = found.get(key, 0) + n
        return found

    def list_tasks(
        self, state: State, queue: str | None = None, limit: int = 100
    ) -> list[TaskInfo]:
        params = {"state": state.value, "queue": queue, "limit": limit}
        cursor, rows = self._read("list", params)
        return [task_info(cursor, row) for row in rows]

    def requeue_dead(self, ids: Sequence[str] | None = None) -> int:
        now = time.time()
        if ids is None:
            return self._in_seq_batches("requeue_dead", {"now": now})
        return self.in_id_batches(
            ids, lambda chunk: self._changed("requeue_dead_ids", ids=json.dumps(chunk), now=now)
        )

    def purge(self, state: State, ids: Sequence[str] | None = None) -> int:
        value = state.value
        if ids is None:
            purged = self._in_seq_batches("purge", {"state": value})
        else:
            purged = self.in_id_batches(
                ids, lambda chunk: self._changed("purge_ids", ids=json.dumps(chunk), state=value)
            )
        self.shrink()
        return purged

    def between_batches(self, took: float) -> None:
        """Copy the batch's pages from the WAL to the file first (a passive checkpoint, which
        no writer waits for): else the commit that takes the WAL past its checkpoint size does
        it, often a producer's enqueue."""
        here = self._process()
        with here.lock:
            self._connection(here).execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
        super().between_batches(took)

    def _changed(self, query: str, **params: Any) -> int:
        """Run one writing statement; how many rows it changed."""
        return self._write(query, params)[1]

    def _in_seq_batches(self, query: str, params: dict[str, Any]) -> int:
        """`query` in batches that walk the table in seq order (each returns its rows' seqs)."""

        def batch(after: int, limit: int) -> tuple[int, Any]:
            return taken(self._write(query, {**params, "after": after, "limit": limit})[0])

        return self.in_ordered_batches(batch, 0)

    def expire_results(self, now: float) -> int:
        expired = self.in_batches(
            lambda limit: self._changed("expire_results", now=now, limit=limit)
        )
        self.shrink()
        return expired

    def shrink(self) -> int:
        """Give the file's free pages back to the file system, VACUUM_PAGES at a time (one
        write transaction each, pausing between them as maintenance batches do); returns how
        many. Deleting tasks leaves free pages that later writes reuse; a file made before
        scoter set `auto_vacuum` keeps them until `vacuum`, and this returns 0."""
        return self.in_batches(self._free_pages, VACUUM_PAGES)

    def _free_pages(self, limit: int) -> int:
        """One step of `shrink`: up to `limit` free pages returned; how many were."""
        here = self._process()
        with here.lock:
            db = self._connection(here)
            before = int(db.execute(SQL["free_pages"]).fetchone()[0])
            if before == 0:
                return 0
            # executescript runs the pragma to its end: execute would free one page.
            db.executescript(f"PRAGMA incremental_vacuum({int(limit)})")
            return before - int(db.execute(SQL["free_pages"]).fetchone()[0])

    def vacuum(self) -> tuple[int, int]:
        """Rebuild the file without its free pages, and from then on give pages back as tasks
        are deleted (auto_vacuum=INCREMENTAL, which a file made before scoter set it lacks).
        Holds the write lock until done — about as long as copying the file: every other
        process waits (up to its timeout). Returns the file's size before and after, in bytes.
        """
        before = os.path.getsize(self._file)
        here = self._process()
        with here.lock:
            db = self._connection(here)
            db.execute("PRAGMA auto_vacuum=INCREMENTAL")
            db.execute("VACUUM")
            db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return before, os.path.getsize(self._file)

    def find_tasks(self, name: str, state: State | None = None, limit: int = 100) -> list[TaskInfo]:
        params = {"name": name, "state": state and state.value, "limit": max(limit, 0)}
        cursor, rows = self._read("find", params)
        return [task_info(cursor, row) for row in rows]
