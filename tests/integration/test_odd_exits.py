"""Tasks and signals that end an attempt in an odd way, on real consumer processes: a task that
calls sys.exit(), one that cancels its own future, a blocked event loop at the drain deadline,
a stop during a restart, and timing options that would break the lease."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
from conftest import HERE, Env

from scoter import TaskFailed

EXECUTORS = ["thread", "process", "asyncio"]


@pytest.mark.parametrize("executor", EXECUTORS)
def test_sys_exit_in_a_task_is_its_error_and_the_consumer_goes_on(env: Env, executor: str) -> None:
    task = env.module.exits_async if executor == "asyncio" else env.module.exits
    worker = env.start("-k", executor, "-w", "2", "--drain-timeout", "2")
    doomed = task(3)
    with pytest.raises(TaskFailed) as failed:
        doomed.get(blocking=True, timeout=20)
    assert failed.value.reason == "error" and "SystemExit: 3" in (failed.value.error or "")
    info = env.app.storage.get(doomed.id)
    assert info is not None and (info.errors, info.crashes, info.attempts) == (2, 0, 2)

    later = env.module.sleepy(0.01)  # the consumer still works
    assert later.get(blocking=True, timeout=10) is not None
    started = time.monotonic()
    worker.send(signal.SIGTERM)
    assert worker.wait(timeout=10) == 0
    assert time.monotonic() - started < 1.5, "nothing was left running to drain"


def test_a_tasks_own_cancelled_error_is_its_error_not_an_interruption(env: Env) -> None:
    env.start("-k", "asyncio", "-w", "2")
    result = env.module.cancels_itself()
    with pytest.raises(TaskFailed) as failed:
        result.get(blocking=True, timeout=20)
    assert failed.value.reason == "error" and "CancelledError" in (failed.value.error or "")
    info = env.app.storage.get(result.id)
    assert info is not None and (info.errors, info.interruptions) == (1, 0)
    assert len(env.runs("started")) == 1


@pytest.mark.parametrize("task_name", ["sleepy", "blocks_loop"])
def test_asyncio_consumer_exits_within_its_drain_deadline_before_anyone_reruns(
    env: Env, task_name: str
) -> None:
    """A plain function on the asyncio executor, or a coroutine that blocks the loop, at the
    drain deadline: the consumer exits within drain_timeout + 1 s, and before the released
    task can start anywhere else."""
    drain_s = 3.0
    first = env.start("-k", "asyncio", "-w", "2", "--drain-timeout", str(drain_s))
    result = getattr(env.module, task_name)(8.0)
    env.wait_for(lambda: env.runs("started"), 15, "the task to start")
    second = env.start("-k", "asyncio", "-w", "2")
    signalled = time.monotonic()
    first.send(signal.SIGTERM)
    assert first.wait(timeout=drain_s + 5) == 0
    first_exited = time.time()
    assert time.monotonic() - signalled < drain_s + 1.0
    env.wait_for(lambda: len(env.runs("started")) == 2, 15, "the second attempt to start")
    rerun = env.runs("started")[1]
    assert rerun[2] == second.pid and rerun[4] > first_exited
    info = env.app.storage.get(result.id)
    assert info is not None and (info.interruptions, info.crashes) == (1, 0)


def test_sigterm_during_a_sighup_drain_exits_instead_of_restarting(env: Env) -> None:
    worker = env.start("-w", "1", "--drain-timeout", "20")
    env.module.polite(10.0)
    env.wait_for(lambda: env.runs("started"), 15, "the task to start")
    worker.send(signal.SIGHUP)
    time.sleep(0.3)
    worker.send(signal.SIGTERM)
    assert worker.wait(timeout=5) == 0
    assert worker.starts() == 1, "the process was executed again"


@pytest.mark.parametrize(
    ("options", "named"),
    [
        (["--lease", "5", "--heartbeat", "5"], "--heartbeat"),
        (["--lease", "6", "--heartbeat", "3.5"], "--heartbeat"),
        (["--lease", "nan"], "--lease"),
        (["--drain-timeout", "inf"], "--drain-timeout"),
    ],
)
def test_timing_options_that_break_the_lease_are_refused(
    env: Env, options: list[str], named: str
) -> None:
    command = [sys.executable, "-m", "scoter", "worker", env.app_path, *options]
    environ = {**os.environ, "PYTHONPATH": str(HERE)}
    done = subprocess.run(command, capture_output=True, text=True, timeout=30, env=environ)
    assert done.returncode == 3, done.stderr
    assert named in done.stderr


def test_consumer_refuses_a_heartbeat_slower_than_half_the_lease(env: Env) -> None:
    with pytest.raises(ValueError, match="heartbeat"):
        env.app.consumer(lease=5, heartbeat=5)
