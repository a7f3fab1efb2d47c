"""A task whose record is gone (its result expired, it was purged) or never was: Result.get
with blocking=True and Result.aget raise ResultMissing at once instead of waiting out their
timeout (or forever); get() without blocking returns None, as Huey's does."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from scoter import ResultMissing, Scoter, State
from scoter.result import Result
from scoter.storage.base import Storage

AT_ONCE_S = 1.0
"""Well under the timeouts given below: an answer this quick did not wait for them."""
TIMEOUT_S = 3.0


def _app(storage: Storage, **options: Any) -> Scoter:
    app = Scoter("unit", storage, **options)

    @app.task
    def add(a: int, b: int) -> int:
        return a + b

    @app.task
    def boom() -> None:
        raise ValueError("no")

    return app


def _quickly(call: Callable[[], object]) -> BaseException | None:
    """What `call()` raised (None: it returned), failing the test unless it did so within
    AT_ONCE_S; a call that never returns fails it too, after TIMEOUT_S."""
    outcome: list[BaseException | None] = []

    def target() -> None:
        try:
            call()
            outcome.append(None)
        except BaseException as exc:  # handed to the test's thread
            outcome.append(exc)

    start = time.monotonic()
    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(TIMEOUT_S + 1)
    elapsed = time.monotonic() - start
    assert outcome, f"still waiting after {elapsed:.1f} s"
    assert elapsed < AT_ONCE_S, f"answered after {elapsed:.1f} s, not at once"
    return outcome[0]


def _purged(app: Scoter, state: State) -> Result[Any]:
    result = app.tasks["add"](1, 2) if state is State.DONE else app.tasks["boom"]()
    app.run_pending()
    assert result.state is state
    assert app.storage.purge(state, [result.id]) == 1
    return result


@pytest.mark.parametrize("state", [State.DONE, State.DEAD])
@pytest.mark.parametrize("timeout", [TIMEOUT_S, None])
def test_blocking_get_of_a_purged_task_raises_at_once(
    storage: Storage, state: State, timeout: float | None
) -> None:
    result = _purged(_app(storage), state)
    raised = _quickly(lambda: result.get(blocking=True, timeout=timeout))
    assert isinstance(raised, ResultMissing)
    assert raised.task_id == result.id
    assert "purged" in str(raised)


def test_blocking_get_of_an_expired_result_raises_at_once(storage: Storage) -> None:
    app = _app(storage, result_ttl=0.01)
    result = app.tasks["add"](1, 2)
    app.run_pending()
    assert result.get(blocking=True, timeout=TIMEOUT_S) == 3  # kept until expired
    assert storage.expire_results(time.time() + 1) == 1
    raised = _quickly(lambda: result.get(blocking=True, timeout=TIMEOUT_S))
    assert isinstance(raised, ResultMissing)
    assert "result_ttl" in str(raised)


def test_blocking_get_of_an_unknown_id_raises_at_once(storage: Storage) -> None:
    result = _app(storage).result("no-such-id")
    raised = _quickly(lambda: result.get(blocking=True))
    assert isinstance(raised, ResultMissing)
    assert "no task was enqueued with this id" in str(raised)


def test_get_without_blocking_returns_none_for_a_missing_record(storage: Storage) -> None:
    result = _purged(_app(storage), State.DONE)
    assert result.get() is None
    assert result.state is None
    assert not result.ready()


def test_aget_of_a_purged_task_raises_at_once(storage: Storage) -> None:
    result = _purged(_app(storage), State.DONE)
    raised = _quickly(lambda: asyncio.run(result.aget(timeout=TIMEOUT_S)))
    assert isinstance(raised, ResultMissing)


def test_a_queued_task_is_still_waited_for(storage: Storage) -> None:
    app = _app(storage)
    result = app.tasks["add"](1, 2)
    threading.Timer(0.2, app.run_pending).start()
    assert result.get(blocking=True, timeout=TIMEOUT_S) == 3
