"""Bad input never kills a consumer and never vanishes (G8), and errors spend their budget."""

from __future__ import annotations

import itertools
import signal

from conftest import Env

from scoter import Message, TaskFailed
from scoter.states import State
from scoter.storage.base import NewTask


def test_unknown_task_and_garbage_payload_go_dead_and_the_consumer_goes_on(env: Env) -> None:
    worker = env.start("-w", "2")
    unknown = env.app.enqueue(Message("no_such_task", (1, 2)))
    env.app.storage.enqueue([NewTask("garbage", "sleepy", "default", b"\xff\x00not json")])
    env.wait_for(lambda: env.state(unknown.id) is State.DEAD, 10, "the unknown task to die")
    env.wait_for(lambda: env.state("garbage") is State.DEAD, 10, "the garbage to die")

    after = env.module.sleepy(0.0)
    assert after.get(blocking=True, timeout=10) == worker.pid
    unknown_info = env.app.storage.get(unknown.id)
    garbage_info = env.app.storage.get("garbage")
    assert unknown_info is not None and unknown_info.reason == "unknown task"
    assert "no_such_task" in (unknown_info.error or "")
    assert garbage_info is not None and garbage_info.reason == "undecodable"
    worker.send(signal.SIGTERM)
    assert worker.wait(timeout=10) == 0


def test_failing_task_retries_with_backoff_then_dies_with_its_traceback(env: Env) -> None:
    env.start("-w", "1")
    result = env.module.fail()
    try:
        result.get(blocking=True, timeout=20)
    except TaskFailed as exc:
        assert exc.reason == "error"
        assert "ValueError: this task always fails" in (exc.error or "")
        assert "Traceback" in (exc.error or "")
    else:
        raise AssertionError("get() should raise TaskFailed")
    starts = [r[4] for r in env.runs("started")]
    assert len(starts) == 3  # retries=2
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    assert gaps[0] >= 0.3 and gaps[1] >= 0.6, gaps
    info = env.app.storage.get(result.id)
    assert info is not None and info.errors == 3
    assert [h["outcome"] for h in info.history] == ["error", "error", "error"]
