"""Expiry, naive datetimes and revocation in one process (memory and SQLite storage); real
consumer processes are in tests/integration/test_time.py."""

from __future__ import annotations

import datetime as dt
import json
import os
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from scoter import (
    SIGNAL_DEAD,
    SIGNAL_EXPIRED,
    SIGNAL_REVOKED,
    Scoter,
    State,
    TaskContext,
    TaskFailed,
)
from scoter.storage.base import Storage
from scoter.times import to_eta

from .conftest import Recorder


@pytest.fixture
def app(storage: Storage) -> Scoter:
    return Scoter("t", storage)


@pytest.fixture
def east_of_utc() -> Iterator[None]:
    """This process's local time is UTC+05:00 (no DST), so naive and UTC readings differ."""
    old = os.environ.get("TZ")
    os.environ["TZ"] = "XYZ-5"
    time.tzset()
    yield
    if old is None:
        del os.environ["TZ"]
    else:
        os.environ["TZ"] = old
    time.tzset()


def _body(app: Scoter, task_id: str) -> dict[str, object]:
    info = app.storage.get(task_id)
    assert info is not None
    body: dict[str, object] = json.loads(info.payload)
    return body


# -- naive and aware times -------------------------------------------------------------------


def test_a_naive_eta_is_local_time_and_an_aware_one_as_given(east_of_utc: None) -> None:
    naive = dt.datetime(2030, 1, 1, 12, 0)
    local = dt.datetime(2030, 1, 1, 12, 0, tzinfo=dt.timezone(dt.timedelta(hours=5)))
    utc = dt.datetime(2030, 1, 1, 12, 0, tzinfo=dt.timezone.utc)
    assert to_eta(None, naive) == local.timestamp()
    assert to_eta(None, utc) == local.timestamp() + 5 * 3600


def test_expires_in_seconds_timedelta_or_datetime(app: Scoter, east_of_utc: None) -> None:
    @app.task
    def f() -> None: ...

    before = time.time()
    seconds = f.schedule(expires=30)
    delta = f.schedule(expires=dt.timedelta(minutes=2))
    at = dt.datetime.now() + dt.timedelta(hours=1)  # naive: local time
    absolute = f.schedule(expires=at)
    assert before + 30 <= float(_body(app, seconds.id)["expires"]) <= time.time() + 30  # type: ignore[arg-type]
    assert float(_body(app, delta.id)["expires"]) == pytest.approx(before + 120, abs=1)  # type: ignore[arg-type]
    assert _body(app, absolute.id)["expires"] == pytest.approx(at.timestamp())


def test_a_task_default_expires_counts_from_each_enqueue(app: Scoter) -> None:
    @app.task(expires=dt.timedelta(seconds=30))
    def f() -> None: ...

    called, via_message = f(), app.enqueue(f)
    for result in (called, via_message):
        assert float(_body(app, result.id)["expires"]) == pytest.approx(time.time() + 30, abs=1)  # type: ignore[arg-type]

    @app.task
    def g() -> None: ...

    assert "expires" not in _body(app, g().id)


def test_bad_expiries_are_refused_with_what_to_do(app: Scoter) -> None:
    with pytest.raises(TypeError, match="expires must be seconds"):

        @app.task(expires="soon")  # type: ignore[call-overload]
        def bad() -> None: ...

    @app.task
    def f() -> None: ...

    with pytest.raises(ValueError, match="in the past"):
        f.schedule(expires=dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=1))
    with pytest.raises(ValueError, match="before the task's eta"):
        f.schedule(delay=60, expires=30)
    with pytest.raises(ValueError, match="more than 0 seconds"):
        f.schedule(expires=-1)
    assert app.storage.counts() == {}


# -- expiry ----------------------------------------------------------------------------------


def test_a_task_claimed_after_it_expired_ends_dead_expired(app: Scoter, recorder: Recorder) -> None:
    ran: list[int] = []

    @app.task
    def f(x: int) -> None:
        ran.append(x)

    app.signals.connect(recorder)
    late = f.schedule((1,), expires=0.05)
    on_time = f.schedule((2,), expires=60)
    time.sleep(0.1)
    assert app.run_pending() == 2
    assert ran == [2]
    info = app.storage.get(late.id)
    assert info is not None and info.state is State.DEAD and info.reason == "expired"
    assert info.error is not None and "not started before it expired" in info.error
    assert info.history[-1]["outcome"] == "expired"
    assert recorder.extras(SIGNAL_DEAD) == [("expired",)]
    assert [ref.id for name, ref, _ in recorder.calls if name == SIGNAL_EXPIRED] == [late.id]
    with pytest.raises(TaskFailed, match="expired"):
        late.get()
    assert on_time.state is State.DONE


def test_a_retry_that_would_start_after_expiry_is_not_scheduled(app: Scoter) -> None:
    @app.task(retries=5, retry_delay=10, expires=2)
    def flaky() -> None:
        raise ValueError("boom")

    result = flaky()
    app.run_pending()
    info = app.storage.get(result.id)
    assert info is not None and info.state is State.DEAD and info.reason == "expired"
    assert info.error is not None and "its retry due" in info.error and "ValueError" in info.error


def test_a_retry_before_expiry_is_scheduled(app: Scoter) -> None:
    @app.task(retries=5, retry_delay=10, expires=60)
    def flaky() -> None:
        raise ValueError("boom")

    flaky()
    assert app.run_pending() == 1
    assert app.storage.counts() == {("default", State.SCHEDULED): 1}


def test_expires_is_signed_with_the_payload(storage: Storage) -> None:
    """A signed task's expiry cannot be moved: the signature covers the whole payload."""
    app = Scoter("t", storage, secret_keys="k" * 32)

    @app.task
    def f() -> None: ...

    result = f.schedule(expires=0.05)
    info = app.storage.get(result.id)
    assert info is not None and b'"expires"' in info.payload
    time.sleep(0.1)
    app.run_pending()
    assert app.storage.get(result.id).reason == "expired"  # type: ignore[union-attr]


# -- revocation ------------------------------------------------------------------------------


def test_revoke_by_id_and_restore(app: Scoter, recorder: Recorder) -> None:
    ran: list[str] = []

    @app.task
    def f(x: str) -> None:
        ran.append(x)

    app.signals.connect(recorder)
    queued, later = f("queued"), f.schedule(("later",), delay=3600)
    assert queued.revoke() is State.QUEUED
    assert later.revoke() is State.SCHEDULED
    assert queued.revoke() is None  # not live any more
    assert queued.is_revoked() and later.is_revoked()
    assert [ref.id for name, ref, _ in recorder.calls if name == SIGNAL_REVOKED] == [
        queued.id, later.id,
    ]  # fmt: skip
    assert app.run_pending() == 0 and ran == []
    assert queued.restore() and later.restore()
    assert not queued.is_revoked()
    assert later.state is State.SCHEDULED
    assert app.run_pending() == 1 and ran == ["queued"]


def test_revoke_all_until_restored(app: Scoter) -> None:
    ran: list[int] = []

    @app.task
    def f(x: int) -> None:
        ran.append(x)

    before = f(1)
    f.revoke()
    after = f(2)
    assert f.is_revoked()
    assert app.run_pending() == 2 and ran == []
    for result in (before, after):
        info = app.storage.get(result.id)
        assert info is not None and info.reason == "revoked"
        assert info.error is not None and "every run of 'f' is revoked" in info.error
    assert f.restore() and not f.is_revoked()
    f(3)
    app.run_pending()
    assert ran == [3]
    assert after.restore()  # a run it ended is restored by id
    app.run_pending()
    assert ran == [3, 2]


def test_revoke_once_revokes_the_next_run_only(app: Scoter) -> None:
    ran: list[int] = []

    @app.task
    def f(x: int) -> None:
        ran.append(x)

    f.revoke(revoke_once=True)
    assert f.is_revoked()
    f(1), f(2)
    app.run_pending()
    assert ran == [2]
    assert not f.is_revoked()


def test_revoke_until_lapses(app: Scoter) -> None:
    ran: list[int] = []

    @app.task
    def f(x: int) -> None:
        ran.append(x)

    f.revoke(revoke_until=0.3)
    f(1)
    app.run_pending()
    assert f.is_revoked() and not f.is_revoked(timestamp=time.time() + 1)
    time.sleep(0.35)
    f(2)
    app.run_pending()
    assert ran == [2]
    app.revoke_all("f", revoke_until=dt.datetime.now() + dt.timedelta(hours=1))
    assert app.is_revoked(f)


# -- a consumer in this process ----------------------------------------------------------------


@pytest.fixture
def consuming(app: Scoter) -> Iterator[Scoter]:
    consumer = app.consumer(workers=2, poll=0.05)
    thread = threading.Thread(target=consumer.run, daemon=True)
    thread.start()
    yield app
    consumer.stop(graceful=False)
    thread.join(10)


def _until(condition: Callable[[], object], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_a_running_task_revoked_is_asked_to_stop_and_ends_revoked(
    app: Scoter, recorder: Recorder
) -> None:
    stopped = threading.Event()

    @app.task(context=True)
    def long(ctx: TaskContext) -> str:
        ctx.wait_for_stop(30)
        stopped.set()
        return "returned"  # a task that returns when asked to stop: still revoked

    app.signals.connect(recorder, SIGNAL_REVOKED)
    result = long()
    consumer = app.consumer(workers=1, poll=0.05)
    thread = threading.Thread(target=consumer.run, daemon=True)
    thread.start()
    try:
        _until(lambda: result.state is State.RUNNING)
        assert result.revoke() is State.RUNNING
        assert result.is_revoked()
        assert stopped.wait(5), "the task never saw ctx.stop_requested"
        _until(lambda: result.state is State.DEAD)
    finally:
        consumer.stop(graceful=False)
        thread.join(10)
    info = app.storage.get(result.id)
    assert info is not None and info.reason == "revoked"
    assert info.error == "revoked while it ran; the attempt ended: succeeded"
    assert recorder.names == [SIGNAL_REVOKED]
    assert app.storage.revocations().ids == frozenset()
    assert result.restore()  # dead `revoked`: queued again
    assert result.state is State.QUEUED


def test_a_consumer_applies_a_name_revocation_at_claim(consuming: Scoter) -> None:
    app = consuming
    ran: list[int] = []

    @app.task
    def f(x: int) -> None:
        ran.append(x)

    f.revoke(revoke_once=True)
    time.sleep(0.6)  # past REFRESH_S: the consumer's copy has it
    first, second = f(1), f(2)
    _until(lambda: second.state is State.DONE and first.state is State.DEAD)
    assert ran == [2]
