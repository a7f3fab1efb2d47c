"""Transactional enqueue and exactly-once effects on PostgreSQL, with real consumer processes."""

from __future__ import annotations

import signal
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from conftest import Env

from scoter.states import State

pytestmark = pytest.mark.parametrize("env", ["postgres"], indirect=True)


@pytest.fixture
def pay(env: Env, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """The `pay` task of postgres_app, run by the consumers; its effects table exists."""
    import postgres_app

    env.app_path = "postgres_app:app"
    env.app.storage.counts()  # scoter's schema first
    with psycopg.connect(postgres_app.server_url(), autocommit=True) as conn:
        postgres_app.create_effects_table(conn)
    yield postgres_app.pay


def effects(env: Env) -> list[tuple[str, int, int]]:
    import postgres_app

    with psycopg.connect(postgres_app.server_url()) as conn:
        rows = conn.execute(f"SELECT task, attempt, pid FROM {postgres_app.effects_table()}")
        return [(task, attempt, pid) for task, attempt, pid in rows]


def stop(*workers: Any) -> None:
    for worker in workers:
        worker.send(signal.SIGTERM)
    assert [worker.wait(timeout=15) for worker in workers] == [0] * len(workers)


def test_a_rolled_back_enqueue_never_runs_and_a_committed_one_does(env: Env) -> None:
    import postgres_app

    worker = env.start("-w", "2")
    with psycopg.connect(postgres_app.server_url()) as conn:  # not autocommit
        rolled_back = env.module.sleepy.enqueue_in(conn, 0.01)
        conn.rollback()
        committed = env.module.sleepy.enqueue_in(conn, 0.01)
        time.sleep(0.5)
        assert env.state(committed.id) is None  # not committed yet: invisible to consumers
        conn.commit()

    assert committed.get(blocking=True, timeout=10) == worker.pid
    assert env.state(rolled_back.id) is None
    assert [r[0] for r in env.runs("started")] == [committed.id]
    stop(worker)


def test_effects_happen_exactly_once_though_a_consumer_is_killed(env: Env, pay: Any) -> None:
    results = pay.map([(0.2, False)] * 40)
    killed, other = (env.start("-w", "4", "--lease", "1") for _ in range(2))

    def killed_is_busy() -> bool:
        mine = Counter(r[0] for r in env.runs() if r[2] == killed.pid)
        return any(count == 1 for count in mine.values())  # started, not finished

    env.wait_for(killed_is_busy, 15, "the first consumer to be running tasks")
    killed.send(signal.SIGKILL)
    third = env.start("-w", "4", "--lease", "1")
    ids = {r.id for r in results}
    env.wait_for(lambda: all(env.state(i) is State.DONE for i in ids), 40, "every task")

    written = Counter(task for task, _, _ in effects(env))
    assert written == dict.fromkeys(ids, 1)
    started = [r[0] for r in env.runs("started")]
    assert len(started) > len(ids), "the killed consumer's tasks ran again"
    stop(other, third)


def test_a_stale_attempt_cannot_complete_and_its_writes_vanish(env: Env, pay: Any) -> None:
    stale = env.start("-w", "1", "--lease", "1")
    message = pay.s(2.0, True)
    env.app.enqueue(message)
    env.wait_for(lambda: env.runs("started"), 15, "the first attempt")
    stale.send(signal.SIGSTOP)  # frozen: its heartbeat stops and its lease expires
    owner = env.start("-w", "1", "--lease", "1")
    env.wait_for(lambda: env.state(message.id) is State.DONE, 20, "the second attempt")
    stale.send(signal.SIGCONT)

    env.wait_for(lambda: env.runs("refused"), 15, "the stale attempt's complete_in")
    assert effects(env) == [(message.id, 2, owner.pid)]
    assert [(r[1], r[2], r[3]) for r in env.runs("refused")] == [("refused", stale.pid, 1)]
    info = env.app.storage.get(message.id)
    assert info is not None
    assert [(h["attempt"], h["outcome"]) for h in info.history] == [
        (1, "crashed"), (2, "succeeded"),
    ]  # fmt: skip
    stop(stale, owner)
