"""Every way a running task can be stopped, for each executor, with real processes and signals."""

from __future__ import annotations

import signal
import subprocess
import time

import pytest
from conftest import Env

from scoter import TaskFailed
from scoter.states import State

EXECUTORS = ["thread", "process", "asyncio"]


def children_of(pid: int) -> list[int]:
    """The task-running children of a process-executor consumer (not its resource tracker)."""
    command = ["pgrep", "-P", str(pid), "-f", "spawn_main"]
    found = subprocess.run(command, capture_output=True, text=True)
    return [int(line) for line in found.stdout.split()]


@pytest.mark.parametrize("executor", EXECUTORS)
def test_sigterm_during_a_long_task_hands_it_off_from_its_checkpoint(
    env: Env, executor: str
) -> None:
    task = env.module.polite_async if executor == "asyncio" else env.module.polite
    first = env.start("-k", executor, "-w", "2", "--drain-timeout", "1.5")
    result = task(3.0)
    env.wait_for(lambda: env.runs("started"), 15, "the task to start")
    second = env.start("-k", executor, "-w", "2")
    first.send(signal.SIGTERM)
    assert first.wait(timeout=10) == 0
    ran_in = result.get(blocking=True, timeout=20)
    assert ran_in == second.pid or ran_in in children_of(second.pid)
    assert len(env.runs("interrupted")) == 1
    assert len(env.runs("resumed")) == 1
    assert len(env.runs("finished")) == 1


@pytest.mark.parametrize("executor", EXECUTORS)
def test_sigkill_of_the_consumer_runs_the_task_again_after_the_lease(
    env: Env, executor: str
) -> None:
    doomed = env.start("-k", executor, "-w", "1", "--lease", "2")
    result = env.module.sleepy(1.0)
    env.wait_for(lambda: env.runs("started"), 15, "the task to start")
    doomed.send(signal.SIGKILL)
    doomed.wait(timeout=5)
    env.start("-k", executor, "-w", "1", "--lease", "2")
    result.get(blocking=True, timeout=30)
    info = env.app.storage.get(result.id)
    assert info is not None and (info.crashes, info.suspect) == (0, True)  # not run alone
    # A killed consumer's children die with it: only the new holder finished the task.
    time.sleep(1.5)
    assert len(env.runs("finished")) == 1


def test_sigkill_of_a_child_requeues_its_task_within_a_second(env: Env) -> None:
    worker = env.start("-k", "process", "-w", "1", "--lease", "30")
    result = env.module.sleepy(3.0)
    env.wait_for(lambda: env.runs("started"), 15, "the task to start")
    [child] = children_of(worker.pid)
    killed = time.monotonic()
    subprocess.run(["kill", "-KILL", str(child)], check=True)

    def crash_recorded() -> bool:
        info = env.app.storage.get(result.id)
        return info is not None and info.crashes == 1

    env.wait_for(crash_recorded, 10, "the crash to be recorded")
    assert time.monotonic() - killed < 1.0  # queued again at once, not after the 30 s lease
    assert result.get(blocking=True, timeout=20) in children_of(worker.pid)
    info = env.app.storage.get(result.id)
    assert info is not None and info.crashes == 1
    assert info.history[0]["outcome"] == "crashed"
    assert "SIGKILL" in str(info.history[0]["detail"])
    assert worker.proc.poll() is None


def test_a_gil_holding_task_in_a_child_keeps_its_lease(env: Env) -> None:
    env.start("-k", "process", "-w", "1", "--lease", "1.5")
    env.start("-k", "process", "-w", "1", "--lease", "1.5")
    result = env.module.spin(4.0)
    result.get(blocking=True, timeout=30)
    info = env.app.storage.get(result.id)
    assert info is not None and info.attempts == 1 and info.crashes == 0
    assert len(env.runs("started")) == 1


@pytest.mark.parametrize("executor", ["process", "asyncio"])
def test_past_its_time_limit_a_task_is_stopped_and_counted_as_an_error(
    env: Env, executor: str
) -> None:
    task = env.module.overrun_async if executor == "asyncio" else env.module.overrun
    worker = env.start("-k", executor, "-w", "1")
    result = task()
    with pytest.raises(TaskFailed) as failed:
        result.get(blocking=True, timeout=20)
    assert failed.value.reason == "error"
    assert "TimedOut" in (failed.value.error or "")
    after = env.module.sleepy(0.0)
    assert after.get(blocking=True, timeout=20) is not None  # the consumer goes on
    assert worker.proc.poll() is None


def test_a_thread_task_past_its_time_limit_is_asked_to_stop(env: Env) -> None:
    env.start("-w", "1")
    result = env.module.overrun_politely()
    with pytest.raises(TaskFailed) as failed:
        result.get(blocking=True, timeout=20)
    assert "TimedOut" in (failed.value.error or "")


def test_a_checkpointing_task_killed_twice_repeats_only_unsaved_work(env: Env) -> None:
    count = 40
    result = env.module.steps(count)
    for kill in range(2):
        worker = env.start("-w", "1", "--lease", "1")
        target = (kill + 1) * count // 3
        env.wait_for(lambda t=target: len(env.runs()) >= t, 20, f"step {target}")
        worker.send(signal.SIGKILL)
        worker.wait(timeout=5)
    env.start("-w", "1", "--lease", "1")
    assert result.get(blocking=True, timeout=30) == count
    performed = [r[1] for r in env.runs() if r[1].startswith("step ")]
    assert sorted(set(performed)) == sorted(f"step {i}" for i in range(count))
    assert len(performed) - count <= 2  # at most the step in progress at each kill


@pytest.mark.parametrize("executor", ["thread", "process"])
def test_sighup_under_load_loses_and_doubles_nothing(env: Env, executor: str) -> None:
    results = env.module.sleepy.map([(0.05,)] * 100)
    worker = env.start("-k", executor, "-w", "4", "--drain-timeout", "5")
    env.wait_for(lambda: len(env.runs("finished")) >= 20, 30, "some progress")
    worker.send(signal.SIGHUP)
    env.wait_for(lambda: all(env.state(r.id) is State.DONE for r in results), 60, "all tasks")
    finished = [r[0] for r in env.runs("finished")]
    assert sorted(finished) == sorted(r.id for r in results)  # each exactly once
    assert worker.proc.poll() is None
    worker.send(signal.SIGTERM)
    assert worker.wait(timeout=10) == 0
