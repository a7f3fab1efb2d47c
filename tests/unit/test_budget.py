"""A message's own budget (`Message(budget=Budget(...))`): its retries, retry delays and time
limit travel in the stored payload and replace its task's, on memory and SQLite storage."""

from __future__ import annotations

import time

import pytest

from scoter import Message, Scoter, State
from scoter.exceptions import DecodeError
from scoter.retry import Budget, RetryPolicy
from scoter.storage.base import Storage

from .attempts import InlineConsumer

LEASE_S = 30.0


@pytest.fixture
def app(storage: Storage) -> Scoter:
    return Scoter("unit", storage)


def run_next(app: Scoter) -> None:
    [lease] = app.storage.claim(["default"], 1, LEASE_S, "c1")
    InlineConsumer(app, "c1").execute(lease)


def test_a_budget_checks_its_fields() -> None:
    assert not Budget()
    assert Budget(retries=0)
    for wrong in ({"retries": -1}, {"retries": 1.5}, {"retry_backoff": 0.5},
                  {"retry_delay": -1}, {"timeout": -1}, {"timeout": float("nan")}):  # fmt: skip
        with pytest.raises(ValueError, match="per-message budget"):
            Budget(**wrong)  # type: ignore[arg-type]


def test_a_budget_replaces_only_what_it_gives() -> None:
    policy = RetryPolicy(retries=1, retry_delay=5.0, retry_backoff=2.0)
    assert Budget(timeout=3.0).over(policy) is policy
    assert Budget(retries=4, retry_delay=1.0).over(policy) == RetryPolicy(4, 1.0, 2.0)


def test_a_message_budget_round_trips_the_payload(app: Scoter) -> None:
    @app.task
    def noop() -> None: ...

    budget = Budget(retries=2, retry_delay=1.5, retry_backoff=3.0, timeout=9.0)
    app.enqueue(Message(noop.name, budget=budget))
    [lease] = app.storage.claim(["default"], 1, LEASE_S, "c1")
    assert app.decode_claimed(lease).budget == budget


def test_a_bad_stored_budget_is_undecodable(app: Scoter) -> None:
    payload = app.serializer.dumps({"args": [], "kwargs": {}, "budget": {"retries": -3}})
    with pytest.raises(DecodeError, match="budget"):
        app._body(payload)


def test_message_retries_override_the_task_retries(app: Scoter) -> None:
    runs: list[int] = []

    @app.task(retries=5)
    def flaky() -> None:
        runs.append(1)
        raise ValueError("no")

    result = app.enqueue(Message(flaky.name, budget=Budget(retries=1)))
    run_next(app)
    assert app.storage.get(result.id).state is State.QUEUED  # type: ignore[union-attr]
    run_next(app)
    info = app.storage.get(result.id)
    assert info is not None and info.state is State.DEAD and info.reason == "error"
    assert len(runs) == 2


def test_message_retry_delay_and_backoff_set_the_retry_eta(app: Scoter) -> None:
    @app.task(retries=3)
    def flaky() -> None:
        raise ValueError("no")

    budget = Budget(retry_delay=10.0, retry_backoff=3.0)
    result = app.enqueue(Message(flaky.name, budget=budget))
    before = time.time()
    run_next(app)
    info = app.storage.get(result.id)
    assert info is not None and info.state is State.SCHEDULED and info.eta is not None
    assert before + 9.0 < info.eta < time.time() + 11.0


def test_message_timeout_replaces_the_task_timeout(app: Scoter) -> None:
    seen: list[float | None] = []

    @app.task(timeout=100.0, context=True)
    def timed(ctx: object) -> None:
        seen.append(ctx.timeout)  # type: ignore[attr-defined]

    app.enqueue(Message(timed.name, budget=Budget(timeout=0.5)))
    run_next(app)
    assert seen == [0.5]


def test_a_message_timeout_of_zero_lifts_the_task_timeout(app: Scoter) -> None:
    seen: list[float | None] = []

    @app.task(timeout=100.0, context=True)
    def timed(ctx: object) -> None:
        seen.append(ctx.timeout)  # type: ignore[attr-defined]

    app.enqueue(Message(timed.name, budget=Budget(timeout=0)))
    run_next(app)
    assert seen == [None]
