"""PostgreSQL: one corrupt row never stalls the others (DESIGN G11), on a real server with a
real consumer."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import drop_postgres_schema, postgres_schema_url
from corrupting import (
    Cli,
    all_done,
    consuming,
    enqueue_work,
    make_app,
    outage_logs,
    postgres_set,
    wait_for,
)

from scoter import Scoter
from scoter.states import State
from scoter.storage.postgres import PostgresStorage

INT_MAX = 2**31 - 1


@pytest.fixture
def url() -> Iterator[str]:
    where = postgres_schema_url()
    yield where
    drop_postgres_schema(where)


@pytest.fixture
def storage(url: str) -> Iterator[PostgresStorage]:
    opened = PostgresStorage.from_url(url)
    yield opened
    opened.close()


@pytest.fixture
def app(storage: PostgresStorage) -> Scoter:
    return make_app(storage)


def dead_reason(storage: PostgresStorage, task_id: str) -> str | None:
    info = storage.get(task_id)
    return info.reason if info is not None and info.state is State.DEAD else None


@pytest.mark.parametrize("column", ["attempts", "errors", "interruptions", "crashes"])
def test_a_counter_at_the_integer_limit_quarantines_its_task_alone(
    app: Scoter,
    storage: PostgresStorage,
    url: str,
    caplog: pytest.LogCaptureFixture,
    column: str,
) -> None:
    """`attempts + 1` overflowed and failed every claim; the other counters overflow in the
    write that settles or rescues the attempt."""
    good = enqueue_work(app, 6)
    bad = enqueue_work(app, 1, "bad", priority=5)[0]
    postgres_set(url, bad, column, INT_MAX)
    with consuming(app, workers=4):
        wait_for(lambda: all_done(storage, good), 10, "the good tasks to be done")
        wait_for(lambda: dead_reason(storage, bad) == "corrupt", 5, "the bad task to die")
    info = storage.get(bad)
    assert info is not None and column in (info.error or ""), info.error
    assert not outage_logs(caplog)


def test_rescue_goes_on_past_a_counter_at_the_limit_and_a_lease_without_expiry(
    app: Scoter, storage: PostgresStorage, url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A dead consumer held three tasks, each run alone: one's crashes would overflow, one
    has no lease expiry (never rescued). The third is rescued and runs; the two go dead."""
    held = enqueue_work(app, 3, "held")
    leases = storage.claim(["default"], 3, 0.2, "dead-consumer")
    for lease in leases:
        assert storage.isolate(lease.token)
    postgres_set(url, held[0], "crashes", INT_MAX)
    postgres_set(url, held[1], "lease_expires", None)
    time.sleep(0.3)
    with consuming(app):
        wait_for(lambda: all_done(storage, held[2:]), 10, "the healthy task to run again")
        wait_for(lambda: dead_reason(storage, held[0]) == "corrupt", 5, "crashes to die")
        wait_for(lambda: dead_reason(storage, held[1]) == "corrupt", 5, "no expiry to die")
    assert "lease_expires" in (storage.get(held[1]).error or "")  # type: ignore[union-attr]
    assert not outage_logs(caplog)


@pytest.mark.parametrize(("eta", "cast"), [(None, ""), ("infinity", "::timestamptz")])
def test_a_scheduled_task_never_due_goes_dead_instead_of_waiting_forever(
    app: Scoter, storage: PostgresStorage, url: str, eta: str | None, cast: str
) -> None:
    [bad] = enqueue_work(app, 1, "bad", eta=time.time() + 3600)
    postgres_set(url, bad, "eta", eta, cast)
    good = enqueue_work(app, 3, eta=time.time() + 0.1)
    with consuming(app):
        wait_for(lambda: all_done(storage, good), 10, "the good scheduled tasks")
        wait_for(lambda: dead_reason(storage, bad) == "corrupt", 5, "the bad one to die")


def test_inspection_survives_odd_json_arrays_and_infinite_times(
    app: Scoter, storage: PostgresStorage, url: str, tmp_path: Path
) -> None:
    ids = enqueue_work(app, 4)
    app.run_pending()
    postgres_set(url, ids[0], "history", '{"not": "a list"}', "::jsonb")
    postgres_set(url, ids[1], "history", '[1, "two", null]', "::jsonb")
    postgres_set(url, ids[2], "progress", [1, 2, 3], "::integer[]")
    postgres_set(url, ids[3], "created_at", "infinity", "::timestamptz")
    postgres_set(url, ids[3], "state", "dead")
    cli = Cli(tmp_path)
    cli.use(storage)
    try:
        output = cli.inspect(ids)
    finally:
        cli.close()
    assert "corrupt" in output
    for task_id in ids:
        info = storage.get(task_id)
        assert info is not None and info.corrupt, task_id


def test_a_history_that_is_not_a_list_stays_a_list_of_attempts(
    app: Scoter, storage: PostgresStorage, url: str
) -> None:
    [bad] = enqueue_work(app, 1, "bad")
    postgres_set(url, bad, "history", '{"not": "a list"}', "::jsonb")
    with consuming(app):
        wait_for(lambda: all_done(storage, [bad]), 10, "the task to be done")
    info = storage.get(bad)
    assert info is not None and not info.corrupt
    assert [h["outcome"] for h in info.history] == ["corrupt", "succeeded"]
