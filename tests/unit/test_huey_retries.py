"""How a Huey task fails, retries, times out, is revoked and what its Result says, on
scoter.huey: memory and a SQLite file, driven by `huey.dequeue()` / `huey.execute()`."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path
from typing import Any

import pytest

from scoter.huey import MemoryHuey, SqliteHuey
from scoter.huey.exceptions import TaskException
from scoter.huey.signals import SIGNAL_ENQUEUED, SIGNAL_ERROR, SIGNAL_RETRYING


class Boom(Exception):
    def __repr__(self) -> str:
        return f"Boom({self.args[0]})"


@pytest.fixture(params=["memory", "sqlite"])
def huey(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    if request.param == "memory":
        return MemoryHuey(utc=False)
    return SqliteHuey(filename=str(tmp_path / "huey.db"), utc=False)


def run_next(huey: Any, timestamp: dt.datetime | None = None) -> Any:
    task = huey.dequeue()
    assert task is not None
    return huey.execute(task, timestamp=timestamp)


def error_of(result: Any) -> dict[str, Any]:
    with pytest.raises(TaskException) as caught:
        result.get()
    return caught.value.metadata


def test_a_pending_retry_surfaces_its_error_with_huey_metadata(huey: Any) -> None:
    @huey.task(retries=1)
    def flaky(n: int) -> None:
        raise Boom(n)

    result = flaky(7)
    assert run_next(huey) is None
    first = error_of(result)
    assert (first["error"], first["retries"], first["task_id"]) == ("Boom(7)", 1, result.id)
    assert "Boom" in first["traceback"]
    assert len(huey) == 1 and huey.result_count() == 0  # read once, as Huey pops it
    assert run_next(huey) is None
    assert huey.result_count() == 1
    result.reset()
    assert error_of(result)["retries"] == 0
    assert len(huey) == 0


def test_intermediate_errors_are_withheld_when_switched_off(tmp_path: Path) -> None:
    huey = MemoryHuey(utc=False, store_intermediate_errors=False)

    @huey.task(retries=1)
    def flaky() -> None:
        raise Boom(1)

    result = flaky()
    run_next(huey)
    assert result.get() is None and huey.result_count() == 0
    run_next(huey)
    assert error_of(result)["error"] == "Boom(1)"


def test_per_call_retries_apply(huey: Any) -> None:
    @huey.task(retries=5)
    def flaky() -> None:
        raise Boom(0)

    result = flaky.schedule(delay=-1, retries=1, retry_delay=0)
    run_next(huey)
    task = huey.dequeue()
    assert (task.id, task.retries) == (result.id, 0)
    huey.execute(task)
    assert len(huey) == 0
    assert error_of(result)["retries"] == 0


def test_retry_signals_say_where_the_retry_went(huey: Any) -> None:
    seen: list[str] = []
    huey.signal()(lambda name, task, *extra: seen.append(name))

    @huey.task(retries=1)
    def flaky() -> None:
        raise Boom(0)

    flaky()
    run_next(huey)
    assert seen[-3:] == [SIGNAL_ERROR, SIGNAL_RETRYING, SIGNAL_ENQUEUED]


def test_execute_honours_its_timestamp_for_expiry_and_revoke_until(huey: Any) -> None:
    ran: list[int] = []

    @huey.task(expires=10)
    def short(n: int) -> int:
        ran.append(n)
        return n

    now = dt.datetime.now()
    short(1)
    assert run_next(huey, now + dt.timedelta(seconds=12)) is None
    short.revoke(revoke_until=now + dt.timedelta(seconds=5))
    short(2)
    assert run_next(huey, now + dt.timedelta(seconds=1)) is None
    short(3)
    assert run_next(huey, now + dt.timedelta(seconds=6)) == 3
    assert ran == [3]
    assert not short.is_revoked()  # the passed revoke_until was dropped


def test_a_per_call_timeout_is_cooperative(huey: Any) -> None:
    @huey.task(context=True)
    def slow(task: Any = None) -> float:
        time.sleep(0.01)
        task.check_timeout()
        return task.timeout

    result = slow(timeout=0.001)
    task = huey.dequeue()
    assert task.timeout == pytest.approx(0.001)
    assert huey.execute(task) is None
    assert "timeout" in error_of(result)["error"].lower()
    slow(timeout=100)
    assert run_next(huey) == 100


def test_a_result_revoked_once_is_skipped_once(huey: Any) -> None:
    ran: list[int] = []

    @huey.task()
    def work(n: int) -> int:
        ran.append(n)
        return n

    first, second = work(1), work(2)
    first.revoke()
    assert first.is_revoked() and not second.is_revoked()
    assert len(huey) == 2  # still queued, as in Huey
    task = huey.dequeue()
    assert task.id == first.id and huey.execute(task) is None
    assert first.get() is None and not first.is_revoked()
    assert run_next(huey) == 2
    huey.enqueue(task)  # its one-time revocation is spent: it runs now
    assert run_next(huey) == 1 and ran == [2, 1]


def test_reschedule_keeps_the_per_call_budget(huey: Any) -> None:
    @huey.task()
    def work() -> None: ...

    old = work.schedule(delay=60, retries=2, retry_delay=5, retry_backoff=4)
    new = old.reschedule()
    assert new.id != old.id and old.is_revoked()
    task = huey.dequeue()
    assert (task.id, task.retries, task.retry_delay, task.retry_backoff) == (new.id, 2, 5, 4)
