"""Many tasks, several consumers, a SIGTERM and a SIGKILL mid-run: every task is counted."""

from __future__ import annotations

import signal

import pytest
from conftest import Env

from scoter.states import State

TASKS = 200


@pytest.mark.parametrize("env", ["sqlite", "postgres"], indirect=True)
def test_no_task_lost_when_consumers_are_terminated_and_killed(env: Env) -> None:
    results = env.module.sleepy.map([(0.1,)] * TASKS)
    consumers = [env.start("-w", "4", "--lease", "2", "--drain-timeout", "1") for _ in range(3)]

    def done() -> int:
        return env.app.storage.counts().get(("default", State.DONE), 0)

    env.wait_for(lambda: done() >= TASKS // 4, 30, "a quarter of the tasks")
    consumers[0].send(signal.SIGTERM)
    env.wait_for(lambda: done() >= TASKS // 2, 30, "half of the tasks")
    consumers[1].send(signal.SIGKILL)
    assert consumers[0].wait(timeout=10) == 0
    env.start("-w", "4", "--lease", "2")
    env.wait_for(lambda: done() == TASKS, 60, "every task")

    assert [env.state(r.id) for r in results] == [State.DONE] * TASKS
    finished = [r[0] for r in env.runs("finished")]
    assert set(finished) == {r.id for r in results}
    duplicates = len(finished) - len(set(finished))
    assert duplicates <= 4, "only the SIGKILLed consumer's in-flight tasks may run twice"
