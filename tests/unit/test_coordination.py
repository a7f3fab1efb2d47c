"""Locks, rate limits, unique tasks and task limits as the app offers them, on the embedded
backends (the storage's own guarantees are the contract suite's; real consumers are the
integration tests')."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from scoter import (
    SIGNAL_ENQUEUED,
    ConfigurationError,
    Message,
    RateLimitExceeded,
    Scoter,
    TaskLockedException,
)
from scoter import coordination as coord
from scoter.storage.base import Storage
from scoter.storage.coordination import TaskLimit

from .conftest import Recorder


def _app(storage: Storage) -> Scoter:
    return Scoter("coord", storage)


def test_lock_task_as_a_context_manager_and_a_decorator(storage: Storage) -> None:
    app = _app(storage)
    lock = app.lock_task("report", ttl=30)
    with lock:
        assert app.is_locked("report")
        with pytest.raises(TaskLockedException, match="'report' is held"), lock:
            pass
        with pytest.raises(TaskLockedException):
            app.lock_task("report").acquire()
    assert not app.is_locked("report")

    @app.lock_task("report")
    def build(x: int) -> int:
        assert app.is_locked("report")
        return x * 2

    assert build(21) == 42
    assert not app.is_locked("report")


def test_an_async_function_is_decorated_too(storage: Storage) -> None:
    app = _app(storage)

    @app.lock_task("a")
    async def work() -> bool:
        return app.is_locked("a")

    assert asyncio.run(work()) is True
    assert not app.is_locked("a")


def test_a_lock_without_ttl_outside_a_task_renews_itself(
    storage: Storage, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(coord, "LOCK_LEASE_S", 0.3)
    monkeypatch.setattr(coord, "LOCK_RENEW_S", 0.05)
    app = _app(storage)
    with app.lock_task("long"):
        time.sleep(0.6)  # twice its lease: renewed meanwhile
        assert app.is_locked("long")
        [info] = storage.locks()
        assert info.expires is not None and info.expires > time.time()
    assert not app.is_locked("long")


def test_a_lock_ttl_runs_out_and_flush_frees_locks(storage: Storage) -> None:
    app = _app(storage)
    app.lock_task("short", ttl=0.05).acquire()
    app.lock_task("left", ttl=300).acquire()
    time.sleep(0.1)
    assert not app.is_locked("short") and app.is_locked("left")
    assert app.flush_locks() == {"left"}
    assert app.flush_locks("left") == set()
    with app.lock_task("left"):
        pass


def test_a_lock_taken_in_a_task_is_free_once_the_task_ends(storage: Storage) -> None:
    app = _app(storage)
    held_inside: list[str | None] = []

    @app.task
    def holds() -> None:
        app.lock_task("in-task").acquire()  # never released by the task itself
        [info] = app.storage.locks()
        held_inside.append(info.task_id)

    result = holds()
    app.run_pending()
    assert held_inside == [result.id]
    assert not app.is_locked("in-task")


def test_a_task_locked_out_fails_as_an_error(storage: Storage) -> None:
    app = _app(storage)

    @app.task
    @app.lock_task("guarded")
    def guarded() -> str:
        return "ran"

    with app.lock_task("guarded"):
        locked_out = guarded()
        app.run_pending()
    ran = guarded()
    app.run_pending()
    info = storage.get(locked_out.id)
    assert info is not None and info.reason == "error"
    assert info.error is not None and "TaskLockedException" in info.error
    assert ran.get() == "ran"


def test_rate_limit_counts_uses_in_a_sliding_window(storage: Storage) -> None:
    app = _app(storage)
    limited = app.rate_limit("api", 2, 0.3)
    with limited, limited:
        pass
    with pytest.raises(RateLimitExceeded, match=r"'api' reached: 2 in 0\.3 s"), limited:
        pass

    @app.rate_limit("other", 1, 60)
    def call() -> int:
        return 1

    assert call() == 1
    with pytest.raises(RateLimitExceeded):
        call()
    time.sleep(0.35)
    with limited:
        pass


def test_unique_calls_return_the_live_task(storage: Storage, recorder: Recorder) -> None:
    app = _app(storage)
    app.signals.connect(recorder, SIGNAL_ENQUEUED)

    @app.task(unique=True)
    def sync(user: int, *, fields: set[str], options: dict[str, int]) -> None:
        pass

    first = sync(1, fields={"a", "b", "c"}, options={"x": 1, "y": 2})
    again = sync(1, options={"y": 2, "x": 1}, fields={"c", "b", "a"})
    other = sync(2, fields={"a"}, options={})
    assert again.id == first.id and other.id != first.id
    assert len(recorder.calls) == 2, "the call left out sends no signal"
    [*many] = app.enqueue_many([sync.s(1, fields={"a", "b", "c"}, options={"x": 1, "y": 2})])
    assert many[0].id == first.id
    app.run_pending()
    assert sync(1, fields={"a", "b", "c"}, options={"x": 1, "y": 2}).id != first.id


def test_a_unique_key_per_call(storage: Storage) -> None:
    app = _app(storage)

    @app.task
    def send(to: str) -> None:
        pass

    @app.task
    def other(to: str) -> None:
        pass

    first = send.schedule(("a",), unique_key="user-1", delay=60)
    assert send.schedule(("b",), unique_key="user-1").id == first.id
    assert app.enqueue(Message("send", ("c",), unique_key="user-1")).id == first.id
    assert app.enqueue(Message("other", ("c",), unique_key="user-1")).id != first.id
    assert send("plain").id != first.id
    with pytest.raises(ValueError, match="unique_key must be a non-empty string"):
        send.schedule(("x",), unique_key="")


def test_task_limits_and_bad_options(storage: Storage) -> None:
    app = _app(storage)

    @app.task(concurrency=2, rate_limit="20/s")
    def both() -> None:
        pass

    @app.task(rate_limit=" 5 / h ")
    def hourly() -> None:
        pass

    assert both.limit == TaskLimit("both", 2, 20, 1.0)
    assert hourly.limit == TaskLimit("hourly", None, 5, 3600.0)
    for bad in ({"concurrency": 0}, {"concurrency": 1.5}, {"rate_limit": "20"},
                {"rate_limit": "0/s"}, {"rate_limit": "3/d"}):  # fmt: skip
        with pytest.raises(ConfigurationError):
            app.task(name="bad", **bad)(lambda: None)  # type: ignore[call-overload]
    with pytest.raises(ConfigurationError, match="ttl must be above 0"):
        app.lock_task("x", ttl=0)
    with pytest.raises(ValueError, match="bad lock name"):
        app.lock_task("has space")


def test_a_consumer_stores_its_tasks_limits_before_it_claims(tmp_path: Path) -> None:
    app = Scoter("limits", f"sqlite:///{tmp_path / 'q.db'}")

    @app.task(concurrency=1)
    def one_at_a_time() -> None:
        time.sleep(0.05)

    @app.task
    def free() -> None:
        pass

    app.storage.set_limits([TaskLimit("free", concurrency=9)])  # an older deploy's
    for _ in range(3):
        one_at_a_time()
    consumer = app.consumer(workers=3, poll=0.05)
    consumer._claim(3)
    states = {s.limit.name: s for s in app.storage.limit_states()}
    assert list(states) == ["one_at_a_time"] and states["one_at_a_time"].running == 1
