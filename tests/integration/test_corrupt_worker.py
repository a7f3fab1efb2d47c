"""A real `scoter worker` process meets corrupt records on each backend (DESIGN G11): it runs
every good task, quarantines the bad ones, rescues a dead consumer's tasks past them, stays up,
and exits 0 on SIGTERM; `scoter info`, `dead list` and `show` work on the same storage."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import HERE, Env, drop_postgres_schema, postgres_schema_url, redis_prefix_url
from corrupting import OUTAGE_LOG, postgres_set, redis_set_field, redis_task_key

from scoter import Message
from scoter.states import State
from scoter.storage.redis import RedisStorage
from scoter.storage.sqlite import SQLiteStorage

INT_MAX = 2**31 - 1
GOOD = 6


def enqueue(env: Env, *ids: str, **fields: object) -> list[str]:
    messages = [Message("sleepy", (0,), id=task_id, **fields) for task_id in ids]  # type: ignore[arg-type]
    return [result.id for result in env.app.enqueue_many(messages)]


def held_by_a_dead_consumer(env: Env, *ids: str, alone: bool = False) -> None:
    """Tasks claimed by a consumer that died at once: their leases expire in 0.1 s."""
    enqueue(env, *ids)
    for lease in env.app.storage.claim(["default"], len(ids), 0.1, "dead-consumer"):
        assert not alone or env.app.storage.isolate(lease.token)


def scoter(env: Env, *args: str) -> str:
    """`python -m scoter ARGS integration_app:app ...` in a process of its own; its output."""
    command = [sys.executable, "-m", "scoter", *args]
    environment = {**os.environ, "PYTHONPATH": str(HERE)}
    done = subprocess.run(
        command, env=environment, capture_output=True, text=True, timeout=60, cwd=env.tmp
    )
    assert done.returncode == 0, (command, done.stdout, done.stderr)
    return done.stdout


def run_worker(
    env: Env, good: list[str], runs: list[str], corrupt: dict[str, str], shown: list[str]
) -> None:
    """Start a worker; wait for `good` and `runs` to be done and each of `corrupt` to be
    dead for its reason; check the worker stayed up, inspect, stop it."""
    worker = env.start("-w", "2", "--lease", "1")
    storage = env.app.storage

    def finished() -> bool:
        done = all(env.state(i) is State.DONE for i in [*good, *runs])
        infos = {i: storage.get(i) for i in corrupt}
        dead = all(
            info is not None and (info.state, info.reason) == (State.DEAD, reason)
            for info, reason in ((infos[i], corrupt[i]) for i in corrupt)
        )
        return done and dead

    env.wait_for(finished, 20, "the good tasks to run and the bad ones to be quarantined")
    assert worker.proc.poll() is None, worker.log()
    for task_id in good:
        info = storage.get(task_id)
        assert info is not None and (info.attempts, info.crashes) == (1, 0), info
    assert OUTAGE_LOG not in worker.log(), worker.log()
    output = scoter(env, "info", "integration_app:app")
    output += scoter(env, "dead", "list", "integration_app:app")
    for task_id in shown:
        output += scoter(env, "show", "integration_app:app", task_id)
    assert "corrupt" in output
    worker.send(signal.SIGTERM)
    assert worker.wait(timeout=15) == 0, worker.log()


@pytest.fixture
def sqlite_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Env]:
    the_env = Env(tmp_path, monkeypatch)
    yield the_env
    the_env.close()


def test_sqlite_worker(sqlite_env: Env) -> None:
    env = sqlite_env
    storage = env.app.storage
    assert isinstance(storage, SQLiteStorage)
    held_by_a_dead_consumer(env, "held-0", "held-1")
    good = enqueue(env, *(f"good-{i}" for i in range(GOOD)))
    enqueue(env, "bad-history", "bad-priority", "bad-name", priority=5)
    with sqlite3.connect(storage.path) as db:
        for task_id in ("held-0", "bad-history"):
            db.execute("UPDATE scoter_tasks SET history = 'not json' WHERE id = ?", (task_id,))
        db.execute("UPDATE scoter_tasks SET priority = 'high' WHERE id = 'bad-priority'")
        db.execute(
            "UPDATE scoter_tasks SET name = CAST(? AS TEXT) WHERE id = 'bad-name'", (b"\xffx",)
        )
    corrupt = {"bad-priority": "corrupt", "bad-name": "corrupt"}
    runs = ["held-0", "held-1", "bad-history"]
    run_worker(env, good, runs, corrupt, ["bad-name", "bad-history", "held-0"])


@pytest.fixture
def redis_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Env]:
    the_env = Env(tmp_path, monkeypatch, redis_prefix_url())
    yield the_env
    storage = the_env.app.storage
    assert isinstance(storage, RedisStorage)
    for key in storage.client.scan_iter(f"{storage.prefix}:*", count=1000):
        storage.client.delete(key)
    the_env.close()


def test_redis_worker(redis_env: Env) -> None:
    env = redis_env
    storage = env.app.storage
    assert isinstance(storage, RedisStorage)
    enqueue(env, "elsewhere", queue="other")  # a queue whose leases key turns to a string
    storage.client.set(f"{storage.prefix}:{{other}}:leases", b"not a sorted set")
    held_by_a_dead_consumer(env, "held-0", "held-1")
    good = enqueue(env, *(f"good-{i}" for i in range(GOOD)))
    enqueue(env, "bad-gone", "bad-attempts", "bad-queue", "bad-name", priority=5)
    storage.client.delete(redis_task_key(storage, "bad-gone"))
    redis_set_field(storage, "bad-attempts", "attempts", b"lots")
    redis_set_field(storage, "bad-queue", "queue", None)
    redis_set_field(storage, "bad-name", "name", b"\xffx")
    redis_set_field(storage, "held-0", "history", b"not json")
    corrupt = {"bad-attempts": "corrupt", "bad-queue": "corrupt", "bad-name": "corrupt"}
    run_worker(env, good, ["held-0", "held-1"], corrupt, ["bad-attempts", "bad-name"])
    assert storage.get("bad-gone") is None
    log = env.workers[0].log()
    assert "task bad-gone: its record is gone" in log, log
    assert "other}:leases: skipped" in log, log


@pytest.fixture
def postgres_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Env]:
    the_env = Env(tmp_path, monkeypatch, postgres_schema_url())
    yield the_env
    the_env.close()
    drop_postgres_schema(the_env.url)


def test_postgres_worker(postgres_env: Env) -> None:
    env = postgres_env
    held_by_a_dead_consumer(env, "held-0", "held-1", "held-2", alone=True)
    good = enqueue(env, *(f"good-{i}" for i in range(GOOD)))
    enqueue(env, "bad-attempts", priority=5)
    enqueue(env, "bad-eta", eta=time.time() + 3600)
    corruptions: list[tuple[str, str, object, str]] = [
        ("bad-attempts", "attempts", INT_MAX, ""),
        ("held-0", "crashes", INT_MAX, ""),
        ("held-1", "lease_expires", None, ""),
        ("bad-eta", "eta", None, ""),
        ("held-2", "history", '{"not": "a list"}', "::jsonb"),
    ]
    for task_id, column, value, cast in corruptions:
        postgres_set(env.url, task_id, column, value, cast)
    corrupt = {i: "corrupt" for i in ("bad-attempts", "held-0", "held-1", "bad-eta")}
    run_worker(env, good, ["held-2"], corrupt, ["bad-attempts", "held-1", "held-2"])
