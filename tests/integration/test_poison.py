"""A poison task — it SIGKILLs its own (thread) consumer — among innocent tasks, the consumer
restarted after each death as a supervisor would: the innocents claimed beside it are never
charged a crash and all succeed; the poison, run alone once suspected, reaches dead `crashed`
at its `max_crashes`."""

from __future__ import annotations

import signal
import time
from typing import Any

import pytest
from conftest import Env

from scoter import Result
from scoter.states import State

ROUNDS = 12
INNOCENTS = 12


@pytest.mark.parametrize("env", ["sqlite", "postgres"], indirect=True)
def test_a_poison_task_never_drags_innocent_tasks_to_dead(env: Env) -> None:
    before = [env.module.sleepy(0.2) for _ in range(2)]
    poison = env.module.crash()  # max_crashes=2
    after = [env.module.sleepy(0.2) for _ in range(INNOCENTS - 2)]
    innocents = before + after

    deadline = time.monotonic() + 90
    for _ in range(ROUNDS):
        worker = env.start("-w", "4", "--lease", "1", "--drain-timeout", "1")
        while worker.proc.poll() is None and not _settled(env, poison.id, innocents):
            assert time.monotonic() < deadline, "the poison round did not end"
            time.sleep(0.05)
        if _settled(env, poison.id, innocents):
            break
    if worker.proc.poll() is None:
        worker.send(signal.SIGTERM)
        assert worker.wait(timeout=10) == 0

    dead = env.app.storage.get(poison.id)
    assert dead is not None and (dead.state, dead.reason) == (State.DEAD, "crashed")
    assert dead.crashes == 2
    for result in innocents:
        info = env.app.storage.get(result.id)
        assert info is not None and info.state is State.DONE, info
        assert info.crashes == 0, f"innocent task {result.id} was charged {info.crashes} crash(es)"
    spared = [h for h in dead.history if "not charged" in str(h.get("detail"))]
    assert spared, "the poison's first crash, beside other tasks, was charged"


def _settled(env: Env, poison_id: str, innocents: list[Result[Any]]) -> bool:
    states = [env.state(r.id) for r in innocents]
    return env.state(poison_id) is State.DEAD and all(s is State.DONE for s in states)
