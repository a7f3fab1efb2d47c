"""A database of a scoter before unique keys, locks and limits (SQLite schema version 4,
PostgreSQL migration 0005), opened by this one: the file upgrades itself, the schema with
`scoter migrate`; the tasks stored before keep working, and the new steps work on them."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import psycopg
import pytest
from contract.conftest import drop_postgres_schema, postgres_url

from scoter.storage.base import NewTask, Storage
from scoter.storage.coordination import TaskLimit
from scoter.storage.postgres import PostgresStorage
from scoter.storage.sqlite import SCHEMA_VERSION, SQL, SQLiteStorage

from .test_schema_upgrades import SQLITE_VERSION_0, _old_rows, older_scoter

QUEUE = "default"


def _check_coordination(storage: Storage) -> None:
    """The old queued task runs under a lock and a limit (the old running one counts); a unique
    key holds."""
    storage.set_limits([TaskLimit("app.work", concurrency=2)])
    [lease] = storage.claim([QUEUE], 5, 30, "c1")
    assert lease.id == "queued"
    assert storage.acquire_lock("old", "owner", ttl=None, task_id=lease.id, lease_token=lease.token)
    assert [lock.task_id for lock in storage.locks()] == ["queued"]
    new = NewTask("new", "app.work", QUEUE, b"{}", unique_key="k")
    assert storage.enqueue_unique([new, replace(new, id="again")]) == ["new", "new"]
    assert storage.claim([QUEUE], 5, 30, "c1") == []  # the limit holds "new" back
    assert storage.ack(lease.token, None, None)
    assert storage.locks() == []
    assert [lease.id for lease in storage.claim([QUEUE], 5, 30, "c1")] == ["new"]


def test_a_version_4_sqlite_file_gets_unique_keys_locks_and_limits(tmp_path: Path) -> None:
    path = tmp_path / "v4.db"
    with sqlite3.connect(path) as db:
        db.executescript(SQLITE_VERSION_0)
        db.execute(_old_rows("scoter_tasks", "x'7b7d'", "1.0", "2.0"))
        for version in (1, 2, 3, 4):
            db.executescript(SQL[f"upgrade_to_{version}"])
        db.execute("PRAGMA user_version = 4")
    db.close()

    storage = SQLiteStorage(str(path))

    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    db.close()
    _check_coordination(storage)
    storage.close()


@pytest.fixture
def url() -> Iterator[str]:
    location = postgres_url()
    yield location
    drop_postgres_schema(location)


def test_migration_0006_adds_unique_keys_locks_and_limits(
    url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with older_scoter(monkeypatch, 5):  # a scoter that knew 0001 to 0005
        old = PostgresStorage.from_url(url)
        assert old.migrate()[-1] == "0005_revocations.sql"
        old.close()
    schema = url.partition("?schema=")[2]
    later = "now() + interval '1 minute'"
    with psycopg.connect(url.partition("?schema=")[0], autocommit=True) as db:
        db.execute(_old_rows(f"{schema}.tasks", "'\\x7b7d'::bytea", "now()", later))

    storage = PostgresStorage.from_url(url)
    assert storage.migrate() == ["0006_coordination.sql", "0007_chords.sql", "0008_data.sql"]

    _check_coordination(storage)
    storage.close()
