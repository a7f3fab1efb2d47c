"""SQLite storage details the contract suite does not cover."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from scoter.storage.base import NewTask
from scoter.storage.sqlite import SQLiteStorage


def test_a_relative_path_stays_where_it_was_opened(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    monkeypatch.chdir(tmp_path / "a")
    storage = SQLiteStorage("q.db")
    monkeypatch.chdir(tmp_path / "b")

    other_thread = threading.Thread(
        target=storage.enqueue, args=([NewTask("t1", "t", "default", b"[[],{}]")],)
    )
    other_thread.start()  # a new thread opens a new connection
    other_thread.join()

    assert storage.get("t1") is not None
    assert (tmp_path / "a" / "q.db").exists() and not (tmp_path / "b" / "q.db").exists()
    storage.close()
