"""Databases made by an older scoter, opened by this one: SQLite files upgrade themselves when
opened, PostgreSQL schemas with `scoter migrate` (0002: the crash rule's `alone` and
`suspect`; 0003 and SQLite's version 2: the periodic schedules' last slots; 0004 and SQLite's
version 3: the history limit; 0005 and SQLite's version 4: revocations; 0007 and SQLite's
version 6: the chord tables). Tasks stored before the upgrade keep working, none of them a
suspect, and a long history is cut to the limit at its next attempt."""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from contract.conftest import drop_postgres_schema, postgres_url

from scoter.states import State
from scoter.storage import _postgres_schema as pg_schema
from scoter.storage.base import HISTORY_LIMIT, SPARED, Ack, Flow, Join, NewTask, Storage
from scoter.storage.postgres import PostgresStorage, SchemaError
from scoter.storage.sqlite import SCHEMA_VERSION, SQLiteStorage

QUEUE = "default"

SQLITE_VERSION_0 = """
CREATE TABLE scoter_tasks (
    seq INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, name TEXT NOT NULL, queue TEXT NOT NULL,
    payload BLOB NOT NULL, priority INTEGER NOT NULL DEFAULT 0, eta REAL, state TEXT NOT NULL,
    max_crashes INTEGER NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,
    errors INTEGER NOT NULL DEFAULT 0, interruptions INTEGER NOT NULL DEFAULT 0,
    crashes INTEGER NOT NULL DEFAULT 0, lease_token TEXT, consumer TEXT, lease_expires REAL,
    checkpoint BLOB, result BLOB, result_expires REAL, error TEXT, reason TEXT,
    history TEXT NOT NULL DEFAULT '[]', progress TEXT, created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
CREATE INDEX scoter_ready ON scoter_tasks (queue, priority DESC, seq) WHERE state = 'queued';
CREATE UNIQUE INDEX scoter_leased ON scoter_tasks (lease_token) WHERE lease_token IS NOT NULL;
CREATE INDEX scoter_expiring ON scoter_tasks (lease_expires) WHERE state = 'running';
CREATE INDEX scoter_due ON scoter_tasks (eta) WHERE state = 'scheduled';
CREATE INDEX scoter_results ON scoter_tasks (result_expires) WHERE state = 'done';
"""
"""The tables of a file made by scoter before SQLite's schema had a version."""

OLD_ROWS = """
INSERT INTO {table} (id, name, queue, payload, state, max_crashes, attempts, lease_token,
                     consumer, lease_expires, created_at, updated_at)
VALUES ('queued', 'app.work', 'default', {payload}, 'queued', 3, 0, NULL, NULL, NULL, {now},
        {now}),
       ('running', 'app.work', 'default', {payload}, 'running', 3, 1, 'old-token', 'c0',
        {expired}, {now}, {now})
"""
"""A queued task, and a running one whose lease expired before the upgrade."""


def _old_rows(table: str, payload: str, now: str, expired: str) -> str:
    return OLD_ROWS.format(table=table, payload=payload, now=now, expired=expired)


def _check_old_tasks_work(storage: Storage) -> None:
    """The tasks of OLD_ROWS, after the upgrade: rescued, claimed, isolated and charged."""
    for task_id in ("queued", "running"):
        info = storage.get(task_id)
        assert info is not None and (info.payload, info.suspect) == (b"{}", False)
    [rescued] = storage.rescue(time.time())  # run beside others, for all it knows
    assert (rescued.id, rescued.charged, rescued.crashes) == ("running", False, 0)
    info = storage.get("running")
    assert info is not None and info.suspect and info.history[-1]["detail"] == SPARED

    leases = storage.claim([QUEUE], 2, 0.05, "c1")
    assert [(lease.id, lease.suspect) for lease in leases] == [("queued", False), ("running", True)]
    assert storage.ack(leases[0].token, None, None)
    assert storage.isolate(leases[1].token)
    time.sleep(0.1)
    [rescued] = storage.rescue(time.time())
    assert (rescued.id, rescued.charged, rescued.crashes) == ("running", True, 1)


# -- SQLite ----------------------------------------------------------------------------------


def _version_0_file(path: Path) -> None:
    with sqlite3.connect(path) as db:
        db.executescript(SQLITE_VERSION_0)
        db.execute(_old_rows("scoter_tasks", "x'7b7d'", "1.0", "2.0"))
    db.close()


def _user_version(path: Path) -> int:
    with sqlite3.connect(path) as db:
        version: int = db.execute("PRAGMA user_version").fetchone()[0]
    db.close()
    return version


def test_an_old_sqlite_file_is_upgraded_when_opened(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    _version_0_file(path)
    assert _user_version(path) == 0

    storage = SQLiteStorage(str(path))

    assert _user_version(path) == SCHEMA_VERSION
    _check_old_tasks_work(storage)
    storage.close()
    SQLiteStorage(str(path)).close()  # opened again: nothing left to do


def _open_when_told(path: str, start: Any) -> None:
    start.wait(30)
    SQLiteStorage(path).close()


def test_processes_opening_an_old_file_together_upgrade_it_once(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    _version_0_file(path)
    spawn = multiprocessing.get_context("spawn")
    start = spawn.Event()
    procs = [spawn.Process(target=_open_when_told, args=(str(path), start)) for _ in range(4)]
    for proc in procs:
        proc.start()
    start.set()
    for proc in procs:
        proc.join(60)

    assert [proc.exitcode for proc in procs] == [0] * 4
    assert _user_version(path) == SCHEMA_VERSION
    storage = SQLiteStorage(str(path))
    _check_old_tasks_work(storage)
    storage.close()


def test_a_version_1_sqlite_file_gets_the_periodic_table(tmp_path: Path) -> None:
    path = tmp_path / "v1.db"
    _version_0_file(path)
    with sqlite3.connect(path) as db:
        db.executescript(_statements_of("upgrade_to_1"))
        db.execute("PRAGMA user_version = 1")
    db.close()

    storage = SQLiteStorage(str(path))

    assert _user_version(path) == SCHEMA_VERSION
    assert storage.enqueue_slot("report", None, 60, [])
    assert storage.last_slots(["report"]) == {"report": 60}
    _check_old_tasks_work(storage)
    storage.close()


def _statements_of(query: str) -> str:
    from scoter.storage.sqlite import SQL

    return SQL[query]


LONG_HISTORY = [{"attempt": i, "outcome": "interrupted", "at": 1.0} for i in range(1, 31)]
"""The history of a task that an older scoter kept whole: 30 attempts."""


def _check_long_history_is_cut(storage: Storage) -> None:
    """The task "queued" of OLD_ROWS, given LONG_HISTORY before the upgrade, after it."""
    info = storage.get("queued")
    assert info is not None and len(info.history) == len(LONG_HISTORY)  # left until it changes
    leases = storage.claim([QUEUE], 1, 30, "c1")
    assert leases[0].id == "queued" and storage.ack(leases[0].token, None, None)
    info = storage.get("queued")
    assert info is not None and len(info.history) == HISTORY_LIMIT
    assert info.history[0]["attempt"] == len(LONG_HISTORY) - HISTORY_LIMIT + 2
    assert info.history[-1]["outcome"] == "succeeded"


def test_a_version_2_sqlite_file_gets_the_history_limit(tmp_path: Path) -> None:
    path = tmp_path / "v2.db"
    _version_0_file(path)
    with sqlite3.connect(path) as db:
        db.executescript(_statements_of("upgrade_to_1"))
        db.executescript(_statements_of("upgrade_to_2"))
        db.execute("PRAGMA user_version = 2")
        db.execute("UPDATE scoter_tasks SET history = ?", (json.dumps(LONG_HISTORY),))
    db.close()

    storage = SQLiteStorage(str(path))

    assert _user_version(path) == SCHEMA_VERSION
    _check_long_history_is_cut(storage)
    storage.close()


def test_a_version_3_sqlite_file_gets_the_revocations_table(tmp_path: Path) -> None:
    path = tmp_path / "v3.db"
    _version_0_file(path)
    with sqlite3.connect(path) as db:
        for version in (1, 2, 3):
            db.executescript(_statements_of(f"upgrade_to_{version}"))
        db.execute("PRAGMA user_version = 3")
    db.close()

    storage = SQLiteStorage(str(path))

    assert _user_version(path) == SCHEMA_VERSION
    assert storage.revoke(["queued"]) == {"queued": State.QUEUED}
    storage.revoke_task("app.work", None, True)
    assert storage.take_revocation("app.work")
    storage.close()


def _check_chords_work(storage: Storage) -> None:
    """A chord of one member counts down: the chord tables are there."""
    assert storage.enqueue([_task("member")]) == 1
    [lease] = storage.claim([QUEUE], 1, 30, "c1")
    flow = Flow(join=Join("chord", 0, 1, b"result", _task("callback")))
    assert storage.ack_many_and_claim([Ack(lease.token, None, None, flow)], [QUEUE], 0, 30, "c1")
    info = storage.chord_info("chord")
    assert info is not None and info.results == {0: b"result"}
    assert storage.get("callback") is not None


def test_a_version_5_sqlite_file_gets_the_chord_tables(tmp_path: Path) -> None:
    path = tmp_path / "v5.db"
    _version_0_file(path)
    with sqlite3.connect(path) as db:
        for version in (1, 2, 3, 4, 5):
            db.executescript(_statements_of(f"upgrade_to_{version}"))
        db.execute("PRAGMA user_version = 5")
    db.close()

    storage = SQLiteStorage(str(path))

    assert _user_version(path) == SCHEMA_VERSION
    _check_old_tasks_work(storage)
    _check_chords_work(storage)
    storage.close()


def test_a_new_sqlite_file_starts_at_the_current_version(tmp_path: Path) -> None:
    SQLiteStorage(str(tmp_path / "new.db")).close()
    assert _user_version(tmp_path / "new.db") == SCHEMA_VERSION


# -- PostgreSQL ------------------------------------------------------------------------------


@pytest.fixture
def url() -> Iterator[str]:
    location = postgres_url()
    yield location
    drop_postgres_schema(location)


@contextlib.contextmanager
def older_scoter(monkeypatch: pytest.MonkeyPatch, knew: int) -> Iterator[None]:
    """Inside: a scoter that knew PostgreSQL migrations 0001 to `knew` only."""
    with monkeypatch.context() as old_scoter:
        old_scoter.setattr(pg_schema, "MIGRATIONS", pg_schema.MIGRATIONS[:knew])
        old_scoter.setattr(pg_schema, "LATEST", knew)
        yield


def _schema(url: str) -> str:
    return url.partition("?schema=")[2]


def test_migration_0002_upgrades_a_version_1_schema(
    url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with older_scoter(monkeypatch, 1):  # a scoter that knew only 0001
        old = PostgresStorage.from_url(url)
        assert old.migrate() == ["0001_initial.sql"]
        old.close()
    table = f"{_schema(url)}.tasks"
    with psycopg.connect(url.partition("?schema=")[0], autocommit=True) as db:
        expired = "now() - interval '1 minute'"
        db.execute(_old_rows(table, "'\\x7b7d'::bytea", "now()", expired))

    storage = PostgresStorage.from_url(url)
    with pytest.raises(SchemaError, match="scoter migrate"):
        storage.get("queued")
    assert storage.migrate() == [
        "0002_suspects.sql", "0003_periodic.sql", "0004_history_limit.sql",
        "0005_revocations.sql", "0006_coordination.sql", "0007_chords.sql", "0008_data.sql",
    ]  # fmt: skip

    _check_old_tasks_work(storage)
    storage.close()


def test_migration_0003_adds_the_periodic_table_to_a_version_2_schema(
    url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with older_scoter(monkeypatch, 2):  # a scoter that knew 0001 and 0002
        old = PostgresStorage.from_url(url)
        assert old.migrate() == ["0001_initial.sql", "0002_suspects.sql"]
        assert old.enqueue([_task("kept")]) == 1
        old.close()

    storage = PostgresStorage.from_url(url)
    with pytest.raises(SchemaError, match="scoter migrate"):
        storage.last_slots(["report"])
    assert storage.migrate() == [
        "0003_periodic.sql", "0004_history_limit.sql", "0005_revocations.sql",
        "0006_coordination.sql", "0007_chords.sql", "0008_data.sql",
    ]  # fmt: skip
    assert storage.enqueue_slot("report", None, 60, [])
    assert storage.last_slots(["report"]) == {"report": 60}
    assert storage.get("kept") is not None
    storage.close()


def test_migration_0004_cuts_long_histories_at_their_next_attempt(
    url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with older_scoter(monkeypatch, 3):  # a scoter that knew 0001 to 0003
        old = PostgresStorage.from_url(url)
        assert old.migrate() == ["0001_initial.sql", "0002_suspects.sql", "0003_periodic.sql"]
        old.close()
    with psycopg.connect(url.partition("?schema=")[0], autocommit=True) as db:
        db.execute(_old_rows(f"{_schema(url)}.tasks", "'\\x7b7d'::bytea", "now()", "now()"))
        db.execute(f"UPDATE {_schema(url)}.tasks SET history = %s", (json.dumps(LONG_HISTORY),))

    storage = PostgresStorage.from_url(url)
    assert storage.migrate() == [
        "0004_history_limit.sql", "0005_revocations.sql", "0006_coordination.sql",
        "0007_chords.sql", "0008_data.sql",
    ]  # fmt: skip

    _check_long_history_is_cut(storage)
    storage.close()


def test_migration_0005_adds_revocations_to_a_version_4_schema(
    url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with older_scoter(monkeypatch, 4):  # a scoter that knew 0001 to 0004
        old = PostgresStorage.from_url(url)
        assert old.migrate()[-1] == "0004_history_limit.sql"
        assert old.enqueue([_task("kept")]) == 1
        old.close()

    storage = PostgresStorage.from_url(url)
    with pytest.raises(SchemaError, match="scoter migrate"):
        storage.revocations()
    assert storage.migrate() == [
        "0005_revocations.sql",
        "0006_coordination.sql",
        "0007_chords.sql",
        "0008_data.sql",
    ]
    assert storage.revoke(["kept"]) == {"kept": State.QUEUED}
    assert storage.restore(["kept"]) == 1
    storage.close()


def test_migration_0007_adds_the_chord_tables_to_a_version_6_schema(
    url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with older_scoter(monkeypatch, 6):  # a scoter that knew 0001 to 0006
        old = PostgresStorage.from_url(url)
        assert old.migrate()[-1] == "0006_coordination.sql"
        assert old.enqueue([_task("kept")]) == 1
        old.close()

    storage = PostgresStorage.from_url(url)
    with pytest.raises(SchemaError, match="scoter migrate"):
        storage.chord_info("chord")
    assert storage.migrate() == ["0007_chords.sql", "0008_data.sql"]

    _check_chords_work(storage)
    assert storage.get("kept") is not None
    storage.close()


def _task(task_id: str) -> NewTask:
    return NewTask(task_id, "app.work", QUEUE, b"{}")


def _columns(url: str) -> dict[str, Any]:
    query = (
        "SELECT column_name, column_default FROM information_schema.columns "
        "WHERE table_schema = %s AND table_name = 'tasks' AND column_name IN ('alone', 'suspect')"
    )
    with psycopg.connect(url.partition("?schema=")[0]) as db:
        return dict(db.execute(query, (_schema(url),)).fetchall())


def test_a_new_postgres_schema_has_the_crash_rule_columns(url: str) -> None:
    storage = PostgresStorage.from_url(url)
    assert storage.counts() == {}
    storage.close()
    assert _columns(url) == {"alone": "false", "suspect": "false"}
