"""Unique tasks enqueued inside the caller's PostgreSQL transaction (`task.enqueue_in`): the
key is taken by that transaction; another enqueue of it waits for the transaction's end, then
finds the task if it committed, or takes the key itself if it rolled back."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import psycopg
import pytest
from contract.conftest import POSTGRES_URL, drop_postgres_schema, postgres_url

from scoter import Scoter, State


@pytest.fixture
def app() -> Iterator[Scoter]:
    url = postgres_url()
    app = Scoter("unique", url)

    @app.task(unique=True)
    def report(day: str) -> None:
        pass

    app.storage.counts()  # the schema first
    yield app
    app.storage.close()
    drop_postgres_schema(url)


def _later(app: Scoter, found: list[str]) -> threading.Thread:
    """Enqueue report("monday") from another thread, outside any transaction."""
    thread = threading.Thread(target=lambda: found.append(app.tasks["report"]("monday").id))
    thread.start()
    return thread


@pytest.mark.parametrize("outcome", ["commit", "rollback"])
def test_a_key_taken_in_a_transaction_waits_for_its_end(app: Scoter, outcome: str) -> None:
    found: list[str] = []
    with psycopg.connect(POSTGRES_URL) as conn:
        mine = app.tasks["report"].enqueue_in(conn, "monday")
        other = _later(app, found)
        time.sleep(0.3)
        assert found == [], "the other enqueue waits for the key"
        getattr(conn, outcome)()
    other.join(10)
    if outcome == "commit":
        assert found == [mine.id]
    else:
        assert found != [mine.id] and app.storage.get(mine.id) is None
    info = app.storage.get(found[0])
    assert info is not None and info.state is State.QUEUED
