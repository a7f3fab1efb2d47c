"""Databases made before key-value data (SQLite's version 7, PostgreSQL's migration 0008),
opened by this scoter: the file upgrades itself, the schema with `scoter migrate`; the tasks
stored before keep working and the data steps work after."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from contract.conftest import drop_postgres_schema, postgres_url

from scoter.storage.base import Storage
from scoter.storage.postgres import PostgresStorage, SchemaError
from scoter.storage.sqlite import SCHEMA_VERSION, SQLiteStorage

from .test_schema_upgrades import (
    _check_old_tasks_work,
    _statements_of,
    _task,
    _user_version,
    _version_0_file,
    older_scoter,
)


def _check_data_works(storage: Storage) -> None:
    assert storage.put_data_if_empty("k", b"v")
    assert storage.pop_data("k") == b"v" and storage.peek_data("k") is None


def test_a_version_6_sqlite_file_gets_the_data_table(tmp_path: Path) -> None:
    path = tmp_path / "v6.db"
    _version_0_file(path)
    with sqlite3.connect(path) as db:
        for version in range(1, 7):
            db.executescript(_statements_of(f"upgrade_to_{version}"))
        db.execute("PRAGMA user_version = 6")
    db.close()

    storage = SQLiteStorage(str(path))

    assert SCHEMA_VERSION == 7 and _user_version(path) == 7
    _check_old_tasks_work(storage)
    _check_data_works(storage)
    storage.close()


@pytest.fixture
def url() -> Iterator[str]:
    location = postgres_url()
    yield location
    drop_postgres_schema(location)


def test_migration_0008_adds_the_data_table_to_a_version_7_schema(
    url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with older_scoter(monkeypatch, 7):  # a scoter that knew 0001 to 0007
        old = PostgresStorage.from_url(url)
        assert old.migrate()[-1] == "0007_chords.sql"
        assert old.enqueue([_task("kept")]) == 1
        old.close()

    storage = PostgresStorage.from_url(url)
    with pytest.raises(SchemaError, match="scoter migrate"):
        storage.peek_data("k")
    assert storage.migrate() == ["0008_data.sql"]

    _check_data_works(storage)
    assert storage.get("kept") is not None
    storage.close()
