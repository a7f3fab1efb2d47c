"""SQLite: one corrupt row never stalls the others (DESIGN G11), with a real database file and
a real consumer."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from corrupting import (
    Cli,
    all_done,
    consuming,
    enqueue_work,
    make_app,
    outage_logs,
    sqlite_set,
    wait_for,
)

from scoter import Scoter
from scoter.states import State
from scoter.storage.sqlite import SQLiteStorage


@pytest.fixture
def storage(tmp_path: Path) -> Iterator[SQLiteStorage]:
    opened = SQLiteStorage(str(tmp_path / "corrupt.db"))
    yield opened
    opened.close()


@pytest.fixture
def app(storage: SQLiteStorage) -> Scoter:
    return make_app(storage)


@pytest.fixture
def inspect(tmp_path: Path, storage: SQLiteStorage) -> Iterator[Cli]:
    cli = Cli(tmp_path)
    cli.use(storage)
    yield cli
    cli.close()


def test_a_history_that_is_not_json_stalls_no_ack(
    app: Scoter, storage: SQLiteStorage, caplog: pytest.LogCaptureFixture
) -> None:
    good = enqueue_work(app, 6)
    bad = enqueue_work(app, 1, "bad")[0]
    sqlite_set(storage, bad, "history", "this is not json")
    with consuming(app):
        wait_for(lambda: all_done(storage, [*good, bad]), 10, "every task to be done")
    info = storage.get(bad)
    assert info is not None and info.state is State.DONE
    assert info.history[0]["outcome"] == "corrupt", info.history
    assert "this is not json" in str(info.history[0]["detail"])
    assert info.history[-1]["outcome"] == "succeeded"
    assert not outage_logs(caplog)


def test_rescue_goes_on_past_a_history_that_is_not_json(
    app: Scoter, storage: SQLiteStorage, caplog: pytest.LogCaptureFixture
) -> None:
    """A dead consumer held two tasks: one's history is garbage. Both are rescued and run."""
    held = enqueue_work(app, 2, "held")
    assert len(storage.claim(["default"], 2, 0.05, "dead-consumer")) == 2
    sqlite_set(storage, held[0], "history", b"\xff\xfe binary")
    good = enqueue_work(app, 3)
    with consuming(app):
        wait_for(lambda: all_done(storage, [*held, *good]), 10, "the held tasks to run again")
    info = storage.get(held[0])
    assert info is not None and info.history[0]["outcome"] == "corrupt"
    assert [h["outcome"] for h in info.history[1:]] == ["crashed", "succeeded"]
    assert not outage_logs(caplog)


@pytest.mark.parametrize(
    ("column", "value", "said"),
    [
        ("priority", "high", "priority"),
        ("name", b"wo\xffrk", "name"),
        ("errors", "lots", "errors"),
        ("max_crashes", 2.5, "max_crashes"),
        ("attempts", 2**31 - 1, "attempts"),
    ],
)
def test_a_wrongly_typed_column_quarantines_its_task_alone(
    app: Scoter,
    storage: SQLiteStorage,
    caplog: pytest.LogCaptureFixture,
    column: str,
    value: object,
    said: str,
) -> None:
    good = enqueue_work(app, 6)
    bad = enqueue_work(app, 1, "bad", priority=5)[0]  # claimed in the first batch
    if column == "name":  # a non-UTF-8 name: sqlite3 cannot even read it as text
        with_name = "CAST(? AS TEXT)"
        import sqlite3

        with sqlite3.connect(storage.path) as db:
            db.execute(f"UPDATE scoter_tasks SET name = {with_name} WHERE id = ?", (value, bad))
    else:
        sqlite_set(storage, bad, column, value)
    with consuming(app, workers=4):
        wait_for(lambda: all_done(storage, good), 10, "the good tasks to be done")
        wait_for(lambda: storage.get(bad).state is State.DEAD, 5, "the bad task to be dead")  # type: ignore[union-attr]
    info = storage.get(bad)
    assert info is not None and info.reason == "corrupt"
    assert said in (info.error or ""), info.error
    for task_id in good:
        done = storage.get(task_id)
        assert done is not None and done.crashes == 0 and done.attempts == 1
    assert not outage_logs(caplog)


def test_inspection_survives_an_unknown_state_and_a_history_that_is_not_json(
    app: Scoter, storage: SQLiteStorage, inspect: Cli
) -> None:
    ids = enqueue_work(app, 3)
    app.run_pending()
    sqlite_set(storage, ids[0], "state", "bogus")
    sqlite_set(storage, ids[1], "state", "dead")
    sqlite_set(storage, ids[1], "history", "{not json")
    sqlite_set(storage, ids[2], "progress", "[1,")
    lease = storage.claim(["default"], 1, 30, "c")  # nothing queued: all ran
    assert lease == []
    output = inspect.inspect(ids)
    assert "corrupt" in output
    for state in State:
        storage.list_tasks(state)
    assert sum(storage.counts().values()) == 3
