"""Signing against a real `scoter worker` on SQLite, Redis and PostgreSQL, each record tampered
with through the backend's own client (sqlite3 UPDATE, Redis HSET/ZADD, PostgreSQL UPDATE), as
anyone with write access to the broker could."""

from __future__ import annotations

import os
import pickle
import signal
import sqlite3
import time
import urllib.parse
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from conftest import (
    Env,
    drop_postgres_schema,
    postgres_schema_url,
    redis_prefix_url,
)

from scoter import Message, Scoter, State, TaskContext
from scoter.config import ENV_SECRET_KEYS
from scoter.exceptions import DecodeError
from scoter.storage.base import Ack, NewTask

KEY = "integration signing key: 32 byte"
SIGNED_ETA = "before its signed eta"


class Planted:
    """A pickle that creates a directory when it is loaded: proof that it was loaded."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self) -> tuple[Any, ...]:
        return os.mkdir, (str(self.path),)


@dataclass
class Broker:
    """One backend: a worker's environment, a producer, and writes that bypass scoter."""

    env: Env
    producer: Scoter
    set_field: Callable[[str, str, object], None]
    """Set one stored field of a task (SQL column or Redis hash field) to a value."""
    make_due: Callable[[str], None]
    """Make a scheduled task due now, as a forged eta would."""

    def calls(self) -> list[tuple[str, str]]:
        runs = self.env.runs_path
        if not runs.exists():
            return []
        with sqlite3.connect(runs, timeout=30) as db:
            try:
                return list(db.execute("SELECT task, argument FROM calls"))
            except sqlite3.OperationalError:
                return []


Tamper = tuple[Callable[[str, str, object], None], Callable[[str], None]]


def _sqlite(url: str) -> Tamper:
    path = url.removeprefix("sqlite:///")

    def update(sql: str, *params: object) -> None:
        with sqlite3.connect(path, timeout=30) as db:
            assert db.execute(sql, params).rowcount == 1

    def set_field(task_id: str, field: str, value: object) -> None:
        update(f"UPDATE scoter_tasks SET {field} = ? WHERE id = ?", value, task_id)

    return set_field, lambda task_id: update(
        "UPDATE scoter_tasks SET eta = 0 WHERE id = ?", task_id
    )


def _postgres(url: str) -> Tamper:
    import psycopg

    parts = urllib.parse.urlsplit(url)
    query = urllib.parse.parse_qsl(parts.query)
    schema = dict(query)["schema"]
    server = parts._replace(query=urllib.parse.urlencode([q for q in query if q[0] != "schema"]))

    def update(sql: str, *params: object) -> None:
        with psycopg.connect(server.geturl(), autocommit=True) as conn:
            assert conn.execute(sql.replace("{schema}", schema), params).rowcount == 1

    def set_field(task_id: str, field: str, value: object) -> None:
        update(f"UPDATE {{schema}}.tasks SET {field} = %s WHERE id = %s", value, task_id)

    def make_due(task_id: str) -> None:
        update("UPDATE {schema}.tasks SET eta = now() - interval '1 hour' WHERE id = %s", task_id)

    return set_field, make_due


def _redis(url: str) -> Tamper:
    import redis

    prefix = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(url).query))["prefix"]
    client = redis.Redis.from_url(url.split("?")[0])

    def set_field(task_id: str, field: str, value: object) -> None:
        key = f"{prefix}:{{default}}:t:{task_id}"
        assert client.exists(key)
        client.hset(key, field, value)  # type: ignore[arg-type]

    def make_due(task_id: str) -> None:
        assert client.zadd(f"{prefix}:{{default}}:due", {task_id: 0}, xx=True, ch=True) == 1

    return set_field, make_due


def _drop_redis(url: str) -> None:
    import redis

    prefix = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(url).query))["prefix"]
    client = redis.Redis.from_url(url.split("?")[0])
    for key in client.scan_iter(f"{prefix}:*", count=1000):
        client.delete(key)
    client.close()


@pytest.fixture(params=["sqlite", "redis", "postgres"])
def broker(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Broker]:
    kind = request.param
    url = {"sqlite": lambda: None, "redis": redis_prefix_url, "postgres": postgres_schema_url}
    env = Env(tmp_path, monkeypatch, url[kind]())
    env.app_path = "signing_app:app"
    monkeypatch.setenv(ENV_SECRET_KEYS, KEY)
    monkeypatch.setenv("SCOTER_TEST_SERIALIZER", "pickle")
    producer = Scoter("signing", env.url, serializer="pickle", secret_keys=KEY)
    tamper = {"sqlite": _sqlite, "redis": _redis, "postgres": _postgres}[kind](env.url)
    yield Broker(env, producer, *tamper)
    producer.storage.close()
    env.close()
    if kind == "postgres":
        drop_postgres_schema(env.url)
    elif kind == "redis":
        _drop_redis(env.url)


def test_tampered_tasks_go_dead_and_planted_pickles_are_never_loaded(
    broker: Broker, tmp_path: Path
) -> None:
    env, producer = broker.env, broker.producer
    greet = [producer.enqueue(Message("greet", (user,))) for user in ("alice", "carol", "dave")]
    broker.set_field(greet[0].id, "name", "purge_user")
    broker.set_field(greet[1].id, "priority", 9)
    broker.set_field(greet[2].id, "max_crashes", 1000)

    original = producer.enqueue(Message("greet", ("erin",)))
    stored = producer.storage.get(original.id)
    assert stored is not None
    replayed = f"replayed-{uuid.uuid4().hex}"
    producer.storage.enqueue([NewTask(replayed, "greet", "default", stored.payload)])

    early = producer.enqueue(Message("greet", ("frank",), eta=time.time() + 3600))
    broker.make_due(early.id)

    checkpoint_proof = tmp_path / "checkpoint-was-unpickled"
    resumable = producer.enqueue(Message("resumable"))
    broker.set_field(resumable.id, "checkpoint", pickle.dumps(Planted(checkpoint_proof)))

    worker = env.start("-w", "2")
    for task_id in (*(r.id for r in greet), replayed, resumable.id):
        env.wait_for(lambda t=task_id: env.state(t) is State.DEAD, 20, f"{task_id} to die")
    env.wait_for(lambda: held_back(producer, early.id), 20, "the early task to be held back")
    assert original.get(blocking=True, timeout=20) == "hello erin"

    for result, fragment in [
        (greet[0], "name 'purge_user' (signed: 'greet')"),
        (greet[1], "priority 9 (signed: 0)"),
        (greet[2], "max_crashes 1000 (signed: 3)"),
    ]:
        info = producer.storage.get(result.id)
        assert info is not None and info.reason == "undecodable"
        assert fragment in (info.error or "")
    replay_info = producer.storage.get(replayed)
    assert replay_info is not None and f"id '{replayed}'" in (replay_info.error or "")
    checkpoint_info = producer.storage.get(resumable.id)
    assert checkpoint_info is not None and checkpoint_info.reason == "error"
    assert "checkpoint of task" in (checkpoint_info.error or "")
    assert broker.calls() == [("greet", "erin")]
    assert not checkpoint_proof.exists()

    result_proof = tmp_path / "result-was-unpickled"
    broker.set_field(original.id, "result", pickle.dumps(Planted(result_proof)))
    with pytest.raises(DecodeError, match="not trusted"):
        original.get()
    assert not result_proof.exists()

    after = producer.enqueue(Message("greet", ("zoe",)))
    assert after.get(blocking=True, timeout=20) == "hello zoe"
    worker.send(signal.SIGTERM)
    assert worker.wait(timeout=20) == 0


def held_back(producer: Scoter, task_id: str) -> bool:
    info = producer.storage.get(task_id)
    return info is not None and any(SIGNED_ETA in str(h.get("detail")) for h in info.history)


def test_claims_return_the_priority_and_crash_budget_a_signature_is_checked_against(
    broker: Broker,
) -> None:
    storage = broker.producer.storage
    storage.enqueue([NewTask(f"t{i}", "greet", "default", b"", 7 - i, None, 5 + i) for i in (0, 1)])
    first = storage.claim(["default"], 1, 30.0, "c1")
    assert [(lease.priority, lease.max_crashes) for lease in first] == [(7, 5)]
    ack = Ack(first[0].token, None, None)
    acked, second = storage.ack_many_and_claim([ack], ["default"], 1, 30.0, "c1")
    assert acked == [True]
    assert [(lease.priority, lease.max_crashes) for lease in second] == [(6, 6)]


def test_a_result_stored_by_complete_in_is_signed_too() -> None:
    """PostgreSQL: `ctx.complete_in(conn, result)` stores the result in the task's own
    transaction, signed as the ack's is; a planted one raises."""
    import psycopg

    url = postgres_schema_url()
    app = Scoter("signing", url, secret_keys=KEY)
    server = url.partition("?schema=")[0]

    @app.task(context=True)
    def pay(ctx: TaskContext) -> None:
        with psycopg.connect(server, autocommit=True) as conn, conn.transaction():
            ctx.complete_in(conn, result="paid")

    try:
        result = pay()
        app.run_pending()
        assert result.get() == "paid"
        set_field, _ = _postgres(url)
        set_field(result.id, "result", b'"forged"')
        with pytest.raises(DecodeError, match="not trusted"):
            result.get()
    finally:
        app.storage.close()
        drop_postgres_schema(url)
