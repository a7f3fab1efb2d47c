"""RetryPolicy: validation, the error budget, backoff, cap, jitter, the interruption budget."""

from __future__ import annotations

import random
from typing import Any

import pytest

from scoter import RetryPolicy, Scoter


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"retries": -1}, "retries"),
        ({"retry_delay": -0.5}, "retry_delay"),
        ({"retry_delay": float("nan")}, "retry_delay"),
        ({"retry_backoff": 0.5}, "retry_backoff"),
        ({"retry_jitter": -0.1}, "retry_jitter"),
        ({"max_crashes": 0}, "max_crashes"),
        ({"max_interruptions": -1}, "max_interruptions"),
    ],
)
def test_invalid_options_raise_value_error_naming_the_option(
    options: dict[str, Any], field: str
) -> None:
    with pytest.raises(ValueError, match=field):
        RetryPolicy(**options)


def test_several_invalid_options_are_all_named() -> None:
    with pytest.raises(ValueError) as info:
        RetryPolicy(retries=-1, max_crashes=0)
    assert "retries" in str(info.value)
    assert "max_crashes" in str(info.value)


def test_negative_max_delay_is_rejected() -> None:
    with pytest.raises(ValueError, match="retry_max_delay"):
        RetryPolicy(retry_max_delay=-1.0)


def test_task_decorator_validates_its_retry_options() -> None:
    app = Scoter(immediate=True)
    with pytest.raises(ValueError, match="retries"):

        @app.task(retries=-1)
        def bad() -> None: ...

    with pytest.raises(TypeError):

        @app.task(retrys=3)  # type: ignore[call-overload]  # a typo is not silently ignored
        def typo() -> None: ...


def test_defaults() -> None:
    policy = RetryPolicy()
    assert (policy.retries, policy.max_crashes, policy.max_interruptions) == (0, 3, 20)
    assert not policy.should_retry(0)


@pytest.mark.parametrize(
    ("retries", "budget"), [(0, [False]), (1, [True, False]), (3, [True, True, True, False])]
)
def test_should_retry_spends_exactly_the_error_budget(retries: int, budget: list[bool]) -> None:
    policy = RetryPolicy(retries=retries)
    assert [policy.should_retry(n) for n in range(len(budget))] == budget
    assert not policy.should_retry(retries + 10)


def test_delay_without_backoff_is_constant() -> None:
    policy = RetryPolicy(retries=5, retry_delay=2.5)
    assert [policy.delay(n) for n in range(4)] == [2.5] * 4


def test_delay_grows_by_the_backoff_factor() -> None:
    policy = RetryPolicy(retries=5, retry_delay=1.0, retry_backoff=2.0)
    assert [policy.delay(n) for n in range(5)] == [1.0, 2.0, 4.0, 8.0, 16.0]


def test_delay_is_capped_by_max_delay() -> None:
    policy = RetryPolicy(retries=10, retry_delay=1.0, retry_backoff=3.0, retry_max_delay=10.0)
    assert [policy.delay(n) for n in range(5)] == [1.0, 3.0, 9.0, 10.0, 10.0]


def test_zero_delay_stays_zero() -> None:
    policy = RetryPolicy(retries=3, retry_backoff=2.0, retry_jitter=0.5)
    assert policy.delay(2) == 0.0


def test_delay_of_a_long_retry_loop_stays_at_the_cap() -> None:
    policy = RetryPolicy(retries=10_000, retry_delay=1.0, retry_backoff=2.0, retry_max_delay=3600)
    assert policy.delay(2000) == 3600.0


def test_jitter_stays_within_its_fraction() -> None:
    policy = RetryPolicy(retries=3, retry_delay=10.0, retry_jitter=0.5)
    rng_state = random.getstate()
    try:
        random.seed(1234)
        samples = [policy.delay(0) for _ in range(500)]
    finally:
        random.setstate(rng_state)
    assert all(10.0 <= s <= 15.0 for s in samples)
    assert len(set(samples)) > 1
    assert max(samples) > 14.0 and min(samples) < 11.0


def test_jitter_endpoints(monkeypatch: pytest.MonkeyPatch) -> None:
    policy = RetryPolicy(retries=3, retry_delay=4.0, retry_backoff=2.0, retry_jitter=0.25)
    monkeypatch.setattr(random, "random", lambda: 0.0)
    assert policy.delay(1) == 8.0
    monkeypatch.setattr(random, "random", lambda: 0.999999)
    assert 8.0 < policy.delay(1) < 10.0


def test_jitter_never_exceeds_the_cap(monkeypatch: pytest.MonkeyPatch) -> None:
    policy = RetryPolicy(retries=5, retry_delay=100.0, retry_jitter=0.5, retry_max_delay=60.0)
    monkeypatch.setattr(random, "random", lambda: 0.999999)
    assert policy.delay(0) <= 60.0


@pytest.mark.parametrize(
    ("max_interruptions", "allowed"), [(0, [False]), (1, [True, False]), (2, [True, True, False])]
)
def test_may_release_spends_the_interruption_budget(
    max_interruptions: int, allowed: list[bool]
) -> None:
    policy = RetryPolicy(max_interruptions=max_interruptions)
    assert [policy.may_release(n) for n in range(len(allowed))] == allowed


def test_interruptions_do_not_touch_the_error_budget() -> None:
    policy = RetryPolicy(retries=0, max_interruptions=5)
    assert policy.may_release(4)
    assert not policy.should_retry(0)
