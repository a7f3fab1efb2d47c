"""An idle SQLite consumer sleeps on the database's file changes (inotify), not on a timer."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from scoter.storage import sqlite
from scoter.storage._inotify import FileWatch
from scoter.storage.base import NewTask
from scoter.storage.sqlite import SQLiteStorage

QUEUE = "default"

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="inotify is Linux's")


def task(task_id: str) -> NewTask:
    return NewTask(task_id, "t", QUEUE, b"[[],{}]")


def _waited(storage: SQLiteStorage, timeout: float) -> float:
    start = time.monotonic()
    storage.wait([QUEUE], timeout)
    return time.monotonic() - start


@pytest.fixture
def path(tmp_path: Path) -> str:
    return str(tmp_path / "q.db")


@pytest.fixture
def waiter(path: str) -> Iterator[SQLiteStorage]:
    storage = SQLiteStorage(path)
    yield storage
    storage.close()


@pytest.fixture
def producer(path: str) -> Iterator[SQLiteStorage]:
    storage = SQLiteStorage(path)
    yield storage
    storage.close()


@linux_only
def test_a_watch_wakes_on_its_files_only(tmp_path: Path) -> None:
    watch = FileWatch.open(str(tmp_path), ["q.db", "q.db-wal"])
    assert watch is not None
    (tmp_path / "other.log").write_text("x")
    assert not watch.wait(0.2)

    (tmp_path / "q.db-wal").write_text("x")  # created: counts though nobody waited yet
    assert watch.wait(5)
    assert not watch.wait(0.05)  # the events were read

    (tmp_path / "q.db-wal").unlink()
    threading.Timer(0.1, (tmp_path / "q.db-wal").write_text, ("y",)).start()
    assert watch.wait(5)
    watch.close()
    watch.close()


@linux_only
def test_a_commit_of_another_connection_wakes_the_waiter(
    waiter: SQLiteStorage, producer: SQLiteStorage
) -> None:
    threading.Timer(0.2, producer.enqueue, ([task("a")],)).start()
    assert 0.15 < _waited(waiter, 10) < 2
    assert waiter._watch() is not None
    assert [lease.id for lease in waiter.claim([QUEUE], 5, 30, "c")] == ["a"]


@linux_only
def test_a_write_seen_before_its_commit_shows_still_wakes_the_waiter(
    waiter: SQLiteStorage, producer: SQLiteStorage, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A writer updates the WAL index after its last write, so the event can come before the
    commit shows, and no event follows it."""
    timeouts: list[float] = []

    def early_event_then_silence(watch: FileWatch, timeout: float) -> bool:
        timeouts.append(timeout)
        if len(timeouts) == 1:
            return True
        if len(timeouts) == 2:
            producer.enqueue([task("a")])  # the commit shows, with no event of its own
        time.sleep(timeout)
        return False

    monkeypatch.setattr(FileWatch, "wait", early_event_then_silence)
    assert _waited(waiter, 10) < 2
    assert timeouts[1] <= sqlite.RECHECK_S


@linux_only
def test_writes_seen_before_the_wait_do_not_make_it_poll(
    waiter: SQLiteStorage, producer: SQLiteStorage, monkeypatch: pytest.MonkeyPatch
) -> None:
    waiter.wait([QUEUE], 0.01)  # the watch exists from here on
    producer.enqueue([task("old")])  # an event the next wait finds waiting, already seen
    waiter.claim([QUEUE], 1, 30, "c")
    waiter_thread, sleep = threading.get_ident(), time.sleep
    naps: list[float] = []

    def spied_sleep(seconds: float) -> None:
        if threading.get_ident() == waiter_thread:
            naps.append(seconds)
        sleep(seconds)

    monkeypatch.setattr(time, "sleep", spied_sleep)
    threading.Timer(0.2, producer.enqueue, ([task("a")],)).start()
    assert 0.15 < _waited(waiter, 10) < 2
    assert naps == []  # woken by the new write, not found by a look on a timer


def test_without_inotify_the_waiter_polls(
    waiter: SQLiteStorage, producer: SQLiteStorage, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(FileWatch, "open", staticmethod(lambda directory, names: None))
    threading.Timer(0.2, producer.enqueue, ([task("a")],)).start()
    assert 0.15 < _waited(waiter, 10) < 2
    assert waiter._watch() is None


@linux_only
def test_the_waiter_sleeps_through_writes_to_other_files(waiter: SQLiteStorage, path: str) -> None:
    other = Path(path).with_name("other.db")
    writes = threading.Timer(0.1, other.write_text, ("x",))
    writes.start()
    assert _waited(waiter, 0.5) >= 0.45
    writes.join()


def test_close_closes_the_watches(waiter: SQLiteStorage) -> None:
    waiter.wait([QUEUE], 0.01)
    watches = list(waiter._watches)
    waiter.close()
    assert waiter._watches == []
    assert all(not watch.close.alive for watch in watches)
