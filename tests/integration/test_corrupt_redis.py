"""Redis: one corrupt task hash or key never stalls the others (DESIGN G11), on a real server
with a real consumer."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import redis_prefix_url
from corrupting import (
    Cli,
    all_done,
    consuming,
    enqueue_work,
    make_app,
    outage_logs,
    redis_set_field,
    redis_task_key,
    wait_for,
)

from scoter import Scoter
from scoter.states import State
from scoter.storage.redis import RedisStorage


@pytest.fixture
def storage() -> Iterator[RedisStorage]:
    opened = RedisStorage.from_url(redis_prefix_url())
    yield opened
    for key in opened.client.scan_iter(f"{opened.prefix}:*", count=1000):
        opened.client.delete(key)
    opened.close()


@pytest.fixture
def app(storage: RedisStorage) -> Scoter:
    return make_app(storage)


def dead_reason(storage: RedisStorage, task_id: str) -> str | None:
    info = storage.get(task_id)
    return info.reason if info is not None and info.state is State.DEAD else None


def ready_members(storage: RedisStorage, queue: str = "default") -> list[bytes]:
    return list(storage.client.zrange(f"{storage.prefix}:{{{queue}}}:ready", 0, -1))


@pytest.mark.parametrize(
    ("field", "value", "said"),
    [
        ("queue", None, "queue"),
        ("attempts", b"lots", "attempts"),
        ("errors", b"-1", "errors"),
        ("max_crashes", b"many", "max_crashes"),
        ("priority", b"", "priority"),
        ("seq", b"1e400", "seq"),
        ("payload", None, "payload"),
        ("name", b"wo\xffrk", "name"),
    ],
)
def test_a_bad_task_hash_is_quarantined_and_the_others_run(
    app: Scoter,
    storage: RedisStorage,
    caplog: pytest.LogCaptureFixture,
    field: str,
    value: bytes | None,
    said: str,
) -> None:
    """The claim script failed on every call for most of these (6 of 6 good tasks stayed
    queued); a non-UTF-8 name failed the claim's reply in Python and dropped the batch."""
    good = enqueue_work(app, 6)
    [bad] = enqueue_work(app, 1, "bad", priority=5)  # claimed in the first batch
    redis_set_field(storage, bad, field, value)
    with consuming(app, workers=4):
        wait_for(lambda: all_done(storage, good), 10, "the good tasks to be done")
        wait_for(lambda: dead_reason(storage, bad) == "corrupt", 5, "the bad task to die")
    info = storage.get(bad)
    assert info is not None and said in (info.error or ""), info.error
    for task_id in good:
        done = storage.get(task_id)
        assert done is not None and done.crashes == 0 and done.attempts == 1
    assert not outage_logs(caplog)


def test_a_ready_entry_whose_hash_is_gone_is_dropped_with_a_log_line(
    app: Scoter, storage: RedisStorage, caplog: pytest.LogCaptureFixture
) -> None:
    good = enqueue_work(app, 6)
    [gone] = enqueue_work(app, 1, "gone", priority=5)
    storage.client.delete(redis_task_key(storage, gone))
    with consuming(app, workers=4):
        wait_for(lambda: all_done(storage, good), 10, "the good tasks to be done")
    assert ready_members(storage) == []
    assert storage.get(gone) is None
    assert any(gone in r.getMessage() and "removed from" in r.getMessage() for r in caplog.records)
    assert not outage_logs(caplog)


def test_a_key_of_the_wrong_type_in_one_queue_does_not_stop_rescue_in_the_others(
    app: Scoter, storage: RedisStorage, caplog: pytest.LogCaptureFixture
) -> None:
    """A dead consumer's task stayed running for good: rescue failed on the other queue's
    leases key, for every queue."""
    enqueue_work(app, 1, "other", queue="other")
    storage.client.delete(f"{storage.prefix}:{{other}}:leases")
    storage.client.set(f"{storage.prefix}:{{other}}:leases", b"not a sorted set")
    held = enqueue_work(app, 2, "held")
    assert len(storage.claim(["default"], 2, 0.05, "dead-consumer")) == 2
    time.sleep(0.1)
    with consuming(app):
        wait_for(lambda: all_done(storage, held), 10, "the dead consumer's tasks to run")
    assert any("other}:leases" in r.getMessage() for r in caplog.records)
    assert not outage_logs(caplog)


def test_rescue_quarantines_a_running_task_whose_token_or_counters_are_bad(
    app: Scoter, storage: RedisStorage, caplog: pytest.LogCaptureFixture
) -> None:
    held = enqueue_work(app, 4, "held")
    for lease in storage.claim(["default"], 4, 0.05, "dead-consumer"):
        assert storage.isolate(lease.token)
    redis_set_field(storage, held[0], "token", b"nonsense")
    redis_set_field(storage, held[1], "crashes", b"lots")
    redis_set_field(storage, held[2], "max_crashes", None)
    time.sleep(0.1)
    with consuming(app):
        wait_for(lambda: all_done(storage, held[3:]), 10, "the healthy task to run again")
        for task_id in held[:3]:
            wait_for(lambda i=task_id: dead_reason(storage, i) == "corrupt", 5, task_id)  # type: ignore[misc]
    assert not storage.client.hgetall(f"{storage.prefix}:{{default}}:tokens")
    assert not outage_logs(caplog)


def test_a_scheduled_task_with_a_bad_seq_is_quarantined_when_due(
    app: Scoter, storage: RedisStorage
) -> None:
    [bad] = enqueue_work(app, 1, "bad", eta=time.time() + 0.1)
    redis_set_field(storage, bad, "priority", b"high")
    good = enqueue_work(app, 3, eta=time.time() + 0.1)
    with consuming(app):
        wait_for(lambda: all_done(storage, good), 10, "the good scheduled tasks")
        wait_for(lambda: dead_reason(storage, bad) == "corrupt", 5, "the bad one to die")


def test_inspection_survives_bad_fields(app: Scoter, storage: RedisStorage, tmp_path: Path) -> None:
    ids = enqueue_work(app, 5)
    app.run_pending()
    redis_set_field(storage, ids[0], "state", b"bogus")
    redis_set_field(storage, ids[1], "history", b"not json")
    redis_set_field(storage, ids[2], "max_crashes", b"3.5")
    redis_set_field(storage, ids[3], "name", b"\xff\xfe")
    redis_set_field(storage, ids[4], "created_at", b"yesterday")
    for task_id in ids[1:]:
        info = storage.get(task_id)
        assert info is not None
        storage.client.zrem(f"{storage.prefix}:{{default}}:done", task_id)
        storage.client.zadd(f"{storage.prefix}:{{default}}:dead", {task_id: 1})
        redis_set_field(storage, task_id, "state", b"dead")
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
