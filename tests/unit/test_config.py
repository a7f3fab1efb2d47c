"""Storage URLs, the SCOTER_URL default, and redaction of credentials."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from scoter import ConfigurationError, Scoter
from scoter.config import ENV_URL, default_url, redact, storage_from_url
from scoter.storage.memory import MemoryStorage
from scoter.storage.sqlite import SQLiteStorage


def open_sqlite(url: str) -> SQLiteStorage:
    storage = storage_from_url(url)
    assert isinstance(storage, SQLiteStorage)
    return storage


def synchronous_of(storage: SQLiteStorage) -> int:
    """PRAGMA synchronous is per connection: ask the storage's own (1 NORMAL, 2 FULL)."""
    return int(storage._db.execute("PRAGMA synchronous").fetchone()[0])


# -- URLs -------------------------------------------------------------------------------------


@pytest.mark.parametrize("url", ["memory://", "MEMORY://"])
def test_memory_url(url: str) -> None:
    storage = storage_from_url(url)
    assert isinstance(storage, MemoryStorage)
    assert storage.url == "memory://"


def test_each_memory_url_is_a_fresh_storage() -> None:
    assert storage_from_url("memory://") is not storage_from_url("memory://")


def test_sqlite_relative_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    storage = open_sqlite("sqlite:///relative.db")
    try:
        assert storage.path == "relative.db"
        assert (tmp_path / "relative.db").exists()
        assert storage.url == f"sqlite:///{tmp_path / 'relative.db'}"
    finally:
        storage.close()


def test_sqlite_relative_path_in_a_subdirectory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "data").mkdir()
    monkeypatch.chdir(tmp_path)
    storage = open_sqlite("sqlite:///data/q.db")
    try:
        assert (tmp_path / "data" / "q.db").exists()
    finally:
        storage.close()


def test_sqlite_absolute_path(tmp_path: Path) -> None:
    path = tmp_path / "absolute.db"
    url = f"sqlite:///{path}"
    assert url.startswith("sqlite:////")
    storage = open_sqlite(url)
    try:
        assert storage.path == str(path)
        assert storage.url == url
        assert path.exists()
        with sqlite3.connect(path) as db:
            assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert synchronous_of(storage) == 1
    finally:
        storage.close()


@pytest.mark.parametrize(("option", "level"), [("full", 2), ("FULL", 2), ("normal", 1)])
def test_sqlite_synchronous_option(tmp_path: Path, option: str, level: int) -> None:
    storage = open_sqlite(f"sqlite:///{tmp_path / 'q.db'}?synchronous={option}")
    try:
        assert synchronous_of(storage) == level
    finally:
        storage.close()


def test_sqlite_bad_synchronous_value(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="normal, full"):
        storage_from_url(f"sqlite:///{tmp_path / 'q.db'}?synchronous=off")
    assert not (tmp_path / "q.db").exists()


def test_sqlite_unknown_option(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="journal"):
        storage_from_url(f"sqlite:///{tmp_path / 'q.db'}?journal=delete")


def test_sqlite_missing_directory(tmp_path: Path) -> None:
    missing = tmp_path / "no" / "such" / "dir"
    with pytest.raises(ConfigurationError, match="does not exist") as info:
        storage_from_url(f"sqlite:///{missing / 'q.db'}")
    assert str(missing) in str(info.value)
    assert not (tmp_path / "no").exists()


@pytest.mark.parametrize(
    "url", ["sqlite://", "sqlite:///", "sqlite://host/q.db", "sqlite:q.db", "sqlite://./q.db"]
)
def test_sqlite_malformed_urls_explain_the_form(url: str) -> None:
    with pytest.raises(ConfigurationError, match="three slashes"):
        storage_from_url(url)


@pytest.mark.parametrize("url", ["mysql://u:hunter2@db/x", "bogus://x", "q.db", "", "/tmp/q.db"])
def test_unknown_scheme(url: str) -> None:
    with pytest.raises(ConfigurationError, match="memory://") as info:
        storage_from_url(url)
    assert "hunter2" not in str(info.value)


def test_a_backend_whose_extra_is_missing_names_the_extra(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from scoter import config

    monkeypatch.setitem(
        config.EXTRA_SCHEMES, "redis", ("scoter.storage.not_installed", "Nope", "redis")
    )
    with pytest.raises(ConfigurationError) as info:
        storage_from_url("redis://:hunter2@localhost:6379/0")
    message = str(info.value)
    assert "pip install 'scoter[redis]'" in message
    assert "hunter2" not in message and "***" in message


def test_bad_url_fails_when_the_storage_is_first_used() -> None:
    app = Scoter("unit", "bogus://nowhere")
    with pytest.raises(ConfigurationError):
        _ = app.storage


# -- redaction --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("redis://user:secret@host:6379/0", "redis://user:***@host:6379/0"),
        ("redis://:secret@host", "redis://:***@host"),
        ("postgresql://app:s3:cr3t@db:5432/app", "postgresql://app:***@db:5432/app"),
        ("postgresql://app@db/app", "postgresql://app@db/app"),
        ("redis://host:6379/0", "redis://host:6379/0"),
        ("sqlite:////var/lib/q.db", "sqlite:////var/lib/q.db"),
        ("memory://", "memory://"),
    ],
)
def test_redact_hides_passwords_only(url: str, expected: str) -> None:
    assert redact(url) == expected


@pytest.mark.parametrize(
    "url", ["redis://user:p@ssw0rd@host:6379/0", "redis://u:@ssw0rd@h", "redis://u:a:b@ssw0rd@h"]
)
def test_redact_hides_passwords_containing_at_signs(url: str) -> None:
    """urlsplit takes everything up to the last '@' of the netloc as user info: so must redact."""
    assert "ssw0rd" not in redact(url)
    assert redact(url).endswith("***@" + url.rsplit("@", 1)[1])


@pytest.mark.parametrize(
    "url", ["postgresql://db/app?user=app&password=s3cr3t", "redis://cache:6379/0?password=s3cr3t"]
)
def test_redact_hides_a_password_query_parameter(url: str) -> None:
    assert "s3cr3t" not in redact(url)


# -- the SCOTER_URL default -------------------------------------------------------------------


def test_default_url_without_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV_URL, raising=False)
    assert default_url("myapp") == "sqlite:///myapp.db"
    monkeypatch.setenv(ENV_URL, "")
    assert default_url("myapp") == "sqlite:///myapp.db"


def test_default_url_from_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_URL, "memory://")
    assert default_url("myapp") == "memory://"
    assert isinstance(Scoter("myapp").storage, MemoryStorage)


def test_app_without_url_or_variable_uses_a_file_named_after_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(ENV_URL, raising=False)
    monkeypatch.chdir(tmp_path)
    storage = Scoter("myapp").storage
    try:
        assert isinstance(storage, SQLiteStorage)
        assert (tmp_path / "myapp.db").exists()
    finally:
        storage.close()


def test_variable_points_the_app_at_a_sqlite_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ENV_URL, f"sqlite:///{tmp_path / 'from-env.db'}")
    storage = Scoter("myapp").storage
    try:
        assert isinstance(storage, SQLiteStorage)
        assert storage.path == str(tmp_path / "from-env.db")
    finally:
        storage.close()


def test_explicit_url_and_immediate_mode_win_over_the_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ENV_URL, f"sqlite:///{tmp_path / 'from-env.db'}")
    assert isinstance(Scoter("a", "memory://").storage, MemoryStorage)
    assert isinstance(Scoter("b", immediate=True).storage, MemoryStorage)
    assert not (tmp_path / "from-env.db").exists()
