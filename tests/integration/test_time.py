"""Revocation and expiry in real `scoter worker` processes, on each backend: revoked tasks
never run however many consumers wait for them, a running task revoked stops and ends revoked,
and an expired task never runs — not even after its consumer is SIGKILLed."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import Env, drop_postgres_schema, postgres_schema_url, redis_prefix_url

from scoter import Result
from scoter.states import EXPIRED, REVOKED, State

BACKENDS = ["sqlite", "redis", "postgres"]


@pytest.fixture
def backend_env(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Env]:
    backend = request.param
    url = {
        "postgres": postgres_schema_url,
        "redis": redis_prefix_url,
        "sqlite": lambda: f"sqlite:///{tmp_path / 'queue.db'}",
    }[backend]()
    env = Env(tmp_path, monkeypatch, url)
    yield env
    env.close()
    if backend == "postgres":
        drop_postgres_schema(url)


def _started(env: Env) -> list[str]:
    return [task_id for task_id, *_ in env.runs("started")]


def _reason(env: Env, result: Result[object]) -> str | None:
    info = env.app.storage.get(result.id)
    return None if info is None or info.state is not State.DEAD else info.reason


@pytest.mark.parametrize("backend_env", BACKENDS, indirect=True)
def test_revoked_tasks_never_run_across_three_consumers(backend_env: Env) -> None:
    env = backend_env
    sleepy, polite, ticks, spin = (env.module.sleepy, env.module.polite, env.module.ticks,
                                   env.module.spin)  # fmt: skip
    workers = [env.start("-w", "1", "--prefetch", "0") for _ in range(3)]
    blockers = list(sleepy.map([(2.0,)] * 3))  # each consumer busy: what follows waits queued
    env.wait_for(lambda: len(_started(env)) == 3, 20, "three blockers")
    queued = list(sleepy.map([(0.01,)] * 6))
    scheduled = [sleepy.schedule((0.01,), delay=1.0) for _ in range(4)]
    polite.revoke(revoke_once=True)
    once = list(polite.map([(0.01,)] * 3))
    ticks.revoke(revoke_until=1.0)  # lapsed when the blockers end: these run
    lapsed = list(ticks.map([(0.01,)] * 2))
    spin.revoke(revoke_until=60)
    until = list(spin.map([(0.01,)] * 2))
    revoked = queued[::2] + scheduled[::2]
    assert [r.revoke() for r in revoked] == [State.QUEUED] * 3 + [State.SCHEDULED] * 2
    kept = queued[1::2] + scheduled[1::2]
    env.wait_for(
        lambda: all(
            env.state(r.id) in (State.DONE, State.DEAD) for r in kept + once + lapsed + until
        ),
        30, "the tasks not revoked",
    )  # fmt: skip
    for worker in workers:
        worker.send(signal.SIGTERM)
    assert [worker.wait(30) for worker in workers] == [0, 0, 0]

    started = _started(env)
    assert not {r.id for r in revoked} & set(started), "a revoked task ran"
    ran = [r.id for r in blockers + kept + once + lapsed if _reason(env, r) is None]
    assert sorted(started) == sorted(ran)
    assert [_reason(env, r) for r in revoked] == [REVOKED] * 5
    assert sorted(_reason(env, r) or "" for r in once) == ["", "", REVOKED]
    assert not polite.is_revoked()
    assert [env.state(r.id) for r in lapsed] == [State.DONE] * 2
    assert [_reason(env, r) for r in until] == [REVOKED] * 2
    assert spin.is_revoked() and not ticks.is_revoked()


@pytest.mark.parametrize(
    ("backend_env", "executor"),
    [("sqlite", "thread"), ("sqlite", "process"), ("redis", "thread"), ("postgres", "thread")],
    indirect=["backend_env"],
)
def test_a_running_task_revoked_stops_and_ends_revoked(backend_env: Env, executor: str) -> None:
    env = backend_env
    env.start("-w", "2", "-k", executor)
    result = env.module.ticks(30.0)
    env.wait_for(lambda: result.id in _started(env), 20, "the task to start")
    asked = time.monotonic()
    assert result.revoke() is State.RUNNING
    env.wait_for(lambda: env.state(result.id) is State.DEAD, 10, "the task to end revoked")
    assert time.monotonic() - asked < 3  # the consumer's copy is at most 0.5 s old

    assert [r[0] for r in env.runs("stopped")] == [result.id]  # it saw ctx.stop_requested
    info = env.app.storage.get(result.id)
    assert info is not None and info.reason == REVOKED
    assert info.error is not None and info.error.startswith("revoked while it ran")
    assert result.is_revoked()
    time.sleep(0.5)
    assert _started(env) == [result.id]  # handed back by Interrupt, yet never run again


@pytest.mark.parametrize("backend_env", BACKENDS, indirect=True)
def test_expired_tasks_never_run_even_through_a_sigkill(backend_env: Env) -> None:
    env = backend_env
    sleepy = env.module.sleepy
    first = env.start("-w", "2", "--prefetch", "0", "--lease", "2")
    blocker = sleepy(1.0)
    running = sleepy.schedule((30.0,), expires=2.0)  # starts, then its consumer dies
    waiting = [sleepy.schedule((0.01,), expires=2.0) for _ in range(4)]  # never claimed
    env.wait_for(lambda: len(_started(env)) == 2, 20, "two tasks to start")
    first.send(signal.SIGKILL)
    first.wait(10)
    time.sleep(2.2)  # past every expiry: what the next consumer claims has expired
    env.start("-w", "2", "--lease", "2")
    env.wait_for(
        lambda: all(env.state(r.id) is State.DEAD for r in [running, *waiting])
        and env.state(blocker.id) is State.DONE,
        30, "the expired tasks to end and the blocker to finish",
    )  # fmt: skip

    assert [_reason(env, r) for r in [running, *waiting]] == [EXPIRED] * 5
    started = _started(env)
    assert started.count(running.id) == 1, "an expired task ran again after the SIGKILL"
    assert not {r.id for r in waiting} & set(started), "an expired task ran"
    assert started.count(blocker.id) == 2  # not expiring: it ran again after the SIGKILL
