"""Property: whatever is wrong with ONE task's stored record — any column or hash field of the
wrong type, missing, garbage bytes, huge, out of range — among good tasks, a consumer finishes
every good task, stays up, ends the bad one dead (`corrupt`, or `undecodable` / `unknown task`
for what it names) or runs it, and inspection still works (DESIGN G11).

The bad task starts in any state: queued, scheduled (due during the run), running under a
consumer that died (its lease expires during the run), done or dead. Each example uses a fresh
storage and runs a real consumer in a thread of this process.

Examples per backend: $SCOTER_CORRUPT_EXAMPLES (default 8, a few seconds each backend); set it
higher for a longer search, e.g. SCOTER_CORRUPT_EXAMPLES=200.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from conftest import drop_postgres_schema, postgres_schema_url, redis_prefix_url
from corrupting import (
    GOOD_REASONS,
    OUTAGE_LOG,
    Cli,
    consuming,
    enqueue_work,
    make_app,
    postgres_clear,
    postgres_set,
    redis_task_key,
)
from hypothesis import HealthCheck, given, reject, settings
from hypothesis import strategies as st

from scoter.states import LIVE_STATES, State
from scoter.storage.base import Storage, TaskInfo
from scoter.storage.redis import RedisStorage
from scoter.storage.sqlite import SQLiteStorage

EXAMPLES = int(os.environ.get("SCOTER_CORRUPT_EXAMPLES", "8"))
SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
GOOD = 4
STARTS = ("queued", "scheduled", "running", "running alone", "done", "dead")
SETTLE_S = 5.0
"""How long a run may take to finish every good task and settle the bad one."""
INT_MAX = 2**31 - 1
FAR_S = 60.0
"""An eta or a lease this far ahead was written by the corruption, not by the run."""

# -- values ----------------------------------------------------------------------------------


class Garbled(bytes):
    """Bytes to store as SQLite TEXT: text that is not UTF-8."""


EDGE_INTS = st.sampled_from(
    [-(2**63), -(2**31), -1, 0, 1, 2**31 - 2, 2**31 - 1, 2**31, 2**53 + 1, 2**63 - 1]
)
HUGE_TEXT = st.sampled_from(["x" * 100_000, "é" * 10_000])
NUMERIC_BYTES = st.sampled_from(
    [b"-1", b"0", b"2147483646", b"2147483647", b"1e400", b"nan", b"inf", b"0x10", b" 5",
     b"1.5", b"", b"99999999999999999999"]
)  # fmt: skip
SQLITE_VALUES = st.one_of(
    st.none(),
    EDGE_INTS,
    st.integers(-(2**63), 2**63 - 1),
    st.floats(allow_nan=False),
    st.text(max_size=30),
    HUGE_TEXT,
    st.binary(max_size=30),
    st.binary(min_size=1, max_size=30).map(lambda b: Garbled(b"\xff" + b)),
    st.sampled_from(["[", "{}", '"x"', "[1, 2, 3]", "[{}]", "null", "queued", "running"]),
)
SQLITE_COLUMNS = (
    "id", "name", "queue", "payload", "priority", "eta", "state", "max_crashes", "attempts",
    "errors", "interruptions", "crashes", "lease_token", "consumer", "lease_expires",
    "checkpoint", "result", "result_expires", "error", "reason", "history", "progress",
    "created_at", "updated_at", "alone", "suspect",
)  # fmt: skip
REDIS_FIELDS = (
    "name", "queue", "payload", "priority", "eta", "state", "max_crashes", "seq", "attempts",
    "errors", "interruptions", "crashes", "token", "consumer", "lease_expires", "checkpoint",
    "result", "result_expires", "error", "reason", "history", "progress", "created_at",
    "updated_at", "alone", "suspect",
)  # fmt: skip
REDIS_VALUES = st.one_of(
    st.none(),
    NUMERIC_BYTES,
    EDGE_INTS.map(lambda n: str(n).encode()),
    st.binary(max_size=30),
    st.text(max_size=30).map(str.encode),
    HUGE_TEXT.map(str.encode),
    st.sampled_from([b"[", b"{}", b"[1,2]", b"[garbage]", b"queued", b"dead", b"1,2,3"]),
)
REDIS_KEY_DAMAGE = st.sampled_from(["delete the hash", "a string instead of the hash"])
PG_TEXT = st.one_of(st.text(max_size=30), HUGE_TEXT).filter(lambda t: "\x00" not in t)
PG_TIMES = st.sampled_from(
    ["infinity", "-infinity", "0001-01-01 00:00:00+00", "294276-12-31 00:00:00+00",
     "1970-01-01 00:00:00+00", "2999-01-01 00:00:00+00"]
)  # fmt: skip
PG_INTS = EDGE_INTS.filter(lambda n: -(2**31) <= n <= INT_MAX) | st.integers(-(2**31), INT_MAX)
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=6,
)
PG_COLUMNS: dict[str, tuple[st.SearchStrategy[Any], str]] = {
    "id": (PG_TEXT, ""), "name": (PG_TEXT, ""), "queue": (PG_TEXT, ""),
    "payload": (st.binary(max_size=30), ""),
    "priority": (PG_INTS, ""), "max_crashes": (PG_INTS, ""), "attempts": (PG_INTS, ""),
    "errors": (PG_INTS, ""), "interruptions": (PG_INTS, ""), "crashes": (PG_INTS, ""),
    "state": (st.sampled_from([s.value for s in State]), ""),
    "lease_token": (st.none() | PG_TEXT, ""), "consumer": (st.none() | PG_TEXT, ""),
    "checkpoint": (st.none() | st.binary(max_size=30), ""),
    "result": (st.none() | st.binary(max_size=30), ""),
    "error": (st.none() | PG_TEXT, ""), "reason": (st.none() | PG_TEXT, ""),
    "eta": (st.none() | PG_TIMES, "::timestamptz"),
    "lease_expires": (st.none() | PG_TIMES, "::timestamptz"),
    "result_expires": (st.none() | PG_TIMES, "::timestamptz"),
    "created_at": (PG_TIMES, "::timestamptz"), "updated_at": (PG_TIMES, "::timestamptz"),
    "history": (JSON.map(json.dumps), "::jsonb"),
    "progress": (st.none() | st.lists(st.none() | PG_INTS, max_size=4), "::integer[]"),
    "alone": (st.booleans(), ""), "suspect": (st.booleans(), ""),
}  # fmt: skip


# -- one example -------------------------------------------------------------------------------


@dataclass
class Victim:
    """The bad task: its id before it was corrupted, and how it started."""

    id: str
    start: str


class LogLines(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


@contextmanager
def captured_logs() -> Iterator[LogLines]:
    handler = LogLines()
    logger = logging.getLogger("scoter")
    logger.addHandler(handler)
    level = logger.level
    logger.setLevel(logging.INFO)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def prepare(storage: Storage, start: str) -> tuple[list[str], Victim]:
    """Good tasks and the bad task, in its starting state (before it is corrupted)."""
    app = make_app(storage)
    eta = time.time() + 0.3 if start == "scheduled" else None
    [bad] = enqueue_work(app, 1, "bad", eta=eta)
    if start.startswith("running") or start in ("done", "dead"):
        lease_s = 0.2 if start.startswith("running") else 30.0
        [lease] = storage.claim(["default"], 1, lease_s, "dead-consumer")
        if start == "running alone":
            assert storage.isolate(lease.token)
        elif start == "done":
            assert storage.ack(lease.token, b"1", None)
        elif start == "dead":
            assert storage.dead(lease.token, "error", "ValueError: boom")
    return enqueue_work(app, GOOD), Victim(bad, start)


def run_and_check(storage: Storage, good: list[str], victim: Victim, folder: Path) -> None:
    """Run a consumer until the good tasks are done and the bad one settled; check it all."""
    app = make_app(storage)
    with captured_logs() as logs:
        with consuming(app, lease=2.0):
            deadline = time.monotonic() + SETTLE_S
            while not settled(storage, good, victim) and time.monotonic() < deadline:
                time.sleep(0.03)
        assert not [line for line in logs.lines if OUTAGE_LOG in line], logs.lines
    for task_id in good:
        info = storage.get(task_id)
        assert info is not None and info.state is State.DONE, info
        assert (info.attempts, info.crashes, info.corrupt) == (1, 0, None), info
    bad = find(storage, good)
    assert acceptable(bad, victim, logs.lines), (bad, logs.lines)
    inspect(storage, [*good, *([bad.id] if bad else [])], folder)


def settled(storage: Storage, good: list[str], victim: Victim) -> bool:
    for task_id in good:
        info = storage.get(task_id)
        if info is None or info.state is not State.DONE:
            return False
    return acceptable(find(storage, good), victim, [])


def find(storage: Storage, good: list[str]) -> TaskInfo | None:
    """The bad task as inspection lists it (whatever its id became), or None. It may move
    while the states are listed one by one: the last listing wins, unless `get` reads it."""
    found = {
        info.id: info for state in State for info in storage.list_tasks(state)
        if info.id not in good
    }  # fmt: skip
    assert len(found) <= 1, found
    for task_id, listed in found.items():
        return storage.get(task_id) or listed
    return None


def acceptable(info: TaskInfo | None, victim: Victim, logs: list[str]) -> bool:
    """Whether the bad task ended as it may: run, dead for a reason it explains, or left where
    its (corrupt) record says it is — another queue, an eta or a lease still ahead. A task that
    was done or dead already has no work to lose: what inspection makes of it is checked on
    its own (`inspect`)."""
    if victim.start in ("done", "dead"):
        return True
    if info is None:  # its record is gone: only a drop with a log line may do that
        return any(victim.id in line and "removed from" in line for line in logs)
    if info.state in (State.DONE, State.DEAD):
        crashed = victim.start.startswith("running") and info.reason == "crashed"
        return crashed or info.state is State.DONE or info.reason in GOOD_REASONS
    ahead = time.time() + FAR_S
    return info.state in LIVE_STATES and (
        info.queue != "default"
        or (info.state is State.SCHEDULED and (info.eta or 0) > ahead)
        or (info.state is State.RUNNING and (info.lease_expires or 0) > ahead)
    )


def inspect(storage: Storage, ids: list[str], folder: Path) -> None:
    for state in State:
        storage.list_tasks(state)
    storage.counts()
    cli = Cli(folder)
    cli.use(storage)
    try:
        cli.inspect([i for i in ids if storage.get(i) is not None])
    finally:
        cli.close()


# -- the properties, one per backend -------------------------------------------------------------


def sqlite_corrupt(storage: SQLiteStorage, task_id: str, column: str, value: object) -> None:
    placeholder = "CAST(? AS TEXT)" if isinstance(value, Garbled) else "?"
    raw = bytes(value) if isinstance(value, Garbled) else value
    try:
        with sqlite3.connect(storage.path) as db:
            db.execute(f"UPDATE scoter_tasks SET {column} = {placeholder} WHERE id = ?",
                       (raw, task_id))  # fmt: skip
    except sqlite3.IntegrityError:  # NOT NULL, a duplicate id or token: no such record
        reject()


@SETTINGS
@given(start=st.sampled_from(STARTS), column=st.sampled_from(SQLITE_COLUMNS), value=SQLITE_VALUES)
def test_sqlite_one_corrupt_column(start: str, column: str, value: object) -> None:
    with tempfile.TemporaryDirectory() as folder:
        storage = SQLiteStorage(str(Path(folder) / "corrupt.db"))
        try:
            good, victim = prepare(storage, start)
            sqlite_corrupt(storage, victim.id, column, value)
            run_and_check(storage, good, victim, Path(folder))
        finally:
            storage.close()


@pytest.fixture(scope="module")
def redis_url() -> str:
    return redis_prefix_url()


def redis_corrupt(storage: RedisStorage, task_id: str, field: str, value: bytes | None) -> None:
    key = redis_task_key(storage, task_id)
    if value is None:
        storage.client.hdel(key, field)
    else:
        storage.client.hset(key, field, value)


@SETTINGS
@given(
    start=st.sampled_from(STARTS),
    damage=st.one_of(st.tuples(st.sampled_from(REDIS_FIELDS), REDIS_VALUES), REDIS_KEY_DAMAGE),
)
def test_redis_one_corrupt_field(redis_url: str, start: str, damage: Any) -> None:
    storage = RedisStorage.from_url(redis_prefix_url(redis_url.partition("?")[0]))
    try:
        good, victim = prepare(storage, start)
        key = redis_task_key(storage, victim.id)
        if damage == "delete the hash":
            storage.client.delete(key)
        elif damage == "a string instead of the hash":
            storage.client.delete(key)
            storage.client.set(key, b"not a hash")
        else:
            redis_corrupt(storage, victim.id, *damage)
        with tempfile.TemporaryDirectory() as folder:
            run_and_check(storage, good, victim, Path(folder))
    finally:
        for key in storage.client.scan_iter(f"{storage.prefix}:*", count=1000):
            storage.client.delete(key)
        storage.close()


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    from scoter.storage.postgres import PostgresStorage

    url = postgres_schema_url()
    storage = PostgresStorage.from_url(url)
    storage.migrate()
    storage.close()
    yield url
    drop_postgres_schema(url)


@SETTINGS
@given(start=st.sampled_from(STARTS), data=st.data())
def test_postgres_one_corrupt_column(postgres_url: str, start: str, data: st.DataObject) -> None:
    from scoter.storage.postgres import PostgresStorage

    column = data.draw(st.sampled_from(sorted(PG_COLUMNS)), label="column")
    values, cast = PG_COLUMNS[column]
    value = data.draw(values, label="value")
    storage = PostgresStorage.from_url(postgres_url)
    try:
        postgres_clear(postgres_url)
        good, victim = prepare(storage, start)
        postgres_corrupt(postgres_url, victim.id, column, value, cast)
        with tempfile.TemporaryDirectory() as folder:
            run_and_check(storage, good, victim, Path(folder))
    finally:
        storage.close()


def postgres_corrupt(url: str, task_id: str, column: str, value: object, cast: str) -> None:
    import psycopg

    try:
        postgres_set(url, task_id, column, value, cast)
    except psycopg.errors.UniqueViolation:  # a duplicate id: no such record
        reject()
