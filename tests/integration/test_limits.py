"""A result over `max_result_bytes` fails its attempt as an error with a message that says
why; the task is not lost and the consumer goes on (thread and process executors)."""

from __future__ import annotations

import signal

import pytest
from conftest import Env

from scoter.app import DEFAULT_MAX_RESULT_BYTES
from scoter.states import State


@pytest.mark.parametrize("executor", ["thread", "process"])
def test_a_result_over_the_limit_fails_its_attempt_and_the_consumer_goes_on(
    env: Env, executor: str
) -> None:
    import limits_app

    env.app_path = "limits_app:app"
    worker = env.start("-w", "2", "-k", executor)
    big = limits_app.sized(DEFAULT_MAX_RESULT_BYTES)  # its JSON is over the default limit
    small = limits_app.sized(10)

    assert small.get(blocking=True, timeout=30) == "x" * 10
    env.wait_for(lambda: env.state(big.id) is State.DEAD, 30, "the oversized result's task")
    info = env.app.storage.get(big.id)
    assert info is not None and info.reason == "error" and info.result is None
    assert "TooLarge: the task's result is 1,048,578 bytes" in (info.error or "")
    assert "max_result_bytes" in (info.error or "")
    assert [entry["outcome"] for entry in info.history] == ["error"]
    worker.send(signal.SIGTERM)
    assert worker.wait(timeout=30) == 0
