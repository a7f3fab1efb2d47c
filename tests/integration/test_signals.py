"""Real `scoter worker` processes receiving real signals: nothing is ever lost."""

from __future__ import annotations

import signal
import time

from conftest import Env

from scoter.states import State


def test_sigterm_hands_a_running_task_to_another_consumer(env: Env) -> None:
    first = env.start("-w", "2", "--drain-timeout", "1.5", "--lease", "10")
    result = env.module.polite(3.0)
    env.wait_for(lambda: env.runs("started"), 10, "the task to start")
    second = env.start("-w", "2", "--lease", "10")

    signalled = time.monotonic()
    first.send(signal.SIGTERM)
    assert first.wait(timeout=10) == 0
    exited_after = time.monotonic() - signalled

    assert result.get(blocking=True, timeout=20) == second.pid
    assert exited_after < 1.5 + 1.0, f"drain took {exited_after:.2f}s"
    interrupted = env.runs("interrupted")
    restarted = [r for r in env.runs("started") if r[2] == second.pid]
    assert len(interrupted) == 1 and len(restarted) == 1
    hand_off = restarted[0][4] - interrupted[0][4]
    assert hand_off < 1.0, f"hand-off took {hand_off:.2f}s"
    info = env.app.storage.get(result.id)
    assert info is not None and info.interruptions == 1 and info.crashes == 0
    assert [r[2] for r in env.runs("resumed")] == [second.pid]  # from the checkpoint
    assert len(env.runs("finished")) == 1
    # integration_app re-enqueues interrupted tasks, as Huey users were told to: a no-op.
    assert env.requeues() == [result.id]
    assert sum(env.app.storage.counts().values()) == 1


def test_sigterm_lets_short_tasks_finish_within_the_drain(env: Env) -> None:
    worker = env.start("-w", "4", "--drain-timeout", "5")
    results = [env.module.sleepy(0.5) for _ in range(4)]
    env.wait_for(lambda: len(env.runs("started")) == 4, 10, "all four tasks to start")
    worker.send(signal.SIGTERM)
    assert worker.wait(timeout=10) == 0
    assert [env.state(r.id) for r in results] == [State.DONE] * 4
    assert len(env.runs("finished")) == 4


def test_second_signal_releases_at_once(env: Env) -> None:
    worker = env.start("-w", "1", "--drain-timeout", "20")
    result = env.module.sleepy(30)
    env.wait_for(lambda: env.runs("started"), 10, "the task to start")
    worker.send(signal.SIGTERM)
    time.sleep(0.3)
    signalled = time.monotonic()
    worker.send(signal.SIGINT)
    assert worker.wait(timeout=5) == 0
    exited = time.time()
    assert time.monotonic() - signalled < 2.0
    # Its thread ran the task until the process exited: held off for a moment, not lost.
    info = env.app.storage.get(result.id)
    assert info is not None and info.state is State.SCHEDULED and info.interruptions == 1
    assert "still running in its thread" in str(info.history[-1]["detail"])
    env.start("-w", "1")
    env.wait_for(lambda: len(env.runs("started")) == 2, 10, "the task to start again")
    assert env.runs("started")[1][4] >= exited  # not while the first attempt could still run


def test_a_thread_still_inside_a_task_at_the_deadline_never_overlaps_its_next_run(
    env: Env,
) -> None:
    first = env.start("-w", "1", "--drain-timeout", "1")
    result = env.module.sleepy(3)
    env.wait_for(lambda: env.runs("started"), 10, "the task to start")
    second = env.start("-w", "1")
    first.send(signal.SIGTERM)
    assert first.wait(timeout=5) == 0
    exited = time.time()

    assert result.get(blocking=True, timeout=20) == second.pid
    [taken_over] = [r for r in env.runs("started") if r[2] == second.pid]
    assert taken_over[4] >= exited  # the first attempt's thread was gone with its process
    assert taken_over[4] - exited < 3.0  # held off about a second, plus a promotion tick
    info = env.app.storage.get(result.id)
    assert info is not None and info.interruptions == 1 and info.crashes == 0


def test_sigkill_mid_task_runs_again_after_the_lease(env: Env) -> None:
    doomed = env.start("-w", "1", "--lease", "2")
    result = env.module.sleepy(1.5)
    env.wait_for(lambda: env.runs("started"), 10, "the task to start")
    doomed.send(signal.SIGKILL)
    doomed.wait(timeout=5)
    killed_at = time.monotonic()
    survivor = env.start("-w", "1", "--lease", "2")

    assert result.get(blocking=True, timeout=20) == survivor.pid
    assert time.monotonic() - killed_at >= 1.0  # not before the lease ran out
    info = env.app.storage.get(result.id)
    # Nothing was marked as run alone: the crash is charged to no one, the task is a suspect.
    assert info is not None and (info.crashes, info.suspect, info.attempts) == (0, True, 2)
    assert [h["outcome"] for h in info.history] == ["crashed", "succeeded"]
    assert len(env.runs("finished")) == 1


def test_a_task_that_kills_its_consumer_ends_dead_as_crashed(env: Env) -> None:
    # A consumer of another queue stays up and does the rescuing.
    env.start("-w", "1", "-Q", "elsewhere", "--lease", "1")
    result = env.module.crash()
    deadline = time.monotonic() + 30
    while env.state(result.id) is not State.DEAD:
        assert time.monotonic() < deadline, "the task never went dead"
        if all(w.proc.poll() is not None for w in env.workers[1:]):
            env.start("-w", "1", "--lease", "1")
        time.sleep(0.1)
    info = env.app.storage.get(result.id)
    assert info is not None and info.reason == "crashed" and info.crashes == 2
    # max_crashes=2: once unmarked (not charged: a suspect), then twice alone, never again
    assert len(env.runs("started")) == 3
    assert env.workers[0].proc.poll() is None


def test_sigstop_past_the_lease_the_late_ack_is_refused(env: Env) -> None:
    frozen = env.start("-w", "1", "--lease", "1.5")
    result = env.module.sleepy(1.0)
    env.wait_for(lambda: env.runs("started"), 10, "the task to start")
    frozen.send(signal.SIGSTOP)
    try:
        taker = env.start("-w", "1", "--lease", "1.5")
        env.wait_for(lambda: env.state(result.id) is State.DONE, 20, "the take-over")
    finally:
        frozen.send(signal.SIGCONT)
    env.wait_for(lambda: "refused" in frozen.log(), 10, "the late ack to be refused")
    assert result.get() == taker.pid
    assert {r[2] for r in env.runs("finished")} == {frozen.pid, taker.pid}
    info = env.app.storage.get(result.id)
    assert info is not None and info.state is State.DONE and info.crashes == 0 and info.suspect
    frozen.send(signal.SIGTERM)
    assert frozen.wait(timeout=10) == 0


def test_sighup_drains_then_restarts_in_place(env: Env) -> None:
    worker = env.start("-w", "2", "--drain-timeout", "5")
    before = env.module.sleepy(0.5)
    env.wait_for(lambda: env.runs("started"), 10, "the task to start")
    worker.send(signal.SIGHUP)
    env.wait_for(lambda: worker.starts() >= 2, 15, "the restarted consumer")
    assert env.state(before.id) is State.DONE  # drained, not interrupted
    after = env.module.sleepy(0.0)
    assert after.get(blocking=True, timeout=10) == worker.pid  # same process, re-executed
    assert worker.proc.poll() is None
    worker.send(signal.SIGTERM)
    assert worker.wait(timeout=10) == 0
