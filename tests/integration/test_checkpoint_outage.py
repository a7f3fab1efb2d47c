"""A storage blip while a task checkpoints: PostgreSQL terminates the consumer's connections
once, or a private Redis restarts for about a second. The checkpoint rides the blip out like a
settling write does, and the task succeeds with no error charged."""

from __future__ import annotations

import signal
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest
from conftest import POSTGRES_URL, Env, drop_postgres_schema, postgres_schema_url
from test_redis_restart import RedisServer

TASK_S = 3.0


def _run_through(env: Env, blip: Callable[[], None]) -> None:
    worker = env.start("-w", "2", "--lease", "10")
    result = env.module.polite(TASK_S)  # checkpoints every 50 ms
    env.wait_for(lambda: env.runs("started"), 15, "the task to start")
    time.sleep(0.3)
    blip()
    assert result.get(blocking=True, timeout=30) == worker.pid
    info = env.app.storage.get(result.id)
    assert info is not None and (info.errors, info.crashes, info.attempts) == (0, 0, 1)
    assert len(env.runs("finished")) == 1
    worker.send(signal.SIGTERM)
    assert worker.wait(timeout=15) == 0


@pytest.fixture
def postgres_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Env, str]]:
    name = f"blip{uuid.uuid4().hex[:12]}"
    url = postgres_schema_url()
    env = Env(tmp_path, monkeypatch, f"{url}&application_name={name}")  # the consumers' URL
    env.app._url = url  # this test's own connections are left alone
    yield env, name
    env.close()
    drop_postgres_schema(url)


def test_checkpoint_rides_out_terminated_postgres_connections(
    postgres_env: tuple[Env, str],
) -> None:
    env, name = postgres_env

    def terminate() -> None:
        with psycopg.connect(POSTGRES_URL, autocommit=True) as admin:
            killed = admin.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE application_name = %s",
                (name,),
            ).fetchone()
        assert killed is not None and killed[0] > 0

    _run_through(env, terminate)


def test_checkpoint_rides_out_a_redis_restart(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = RedisServer(tmp_path)
    server.start()
    env = Env(tmp_path, monkeypatch, f"{server.url}?prefix=blip")

    def restart() -> None:
        server.stop(signal.SIGTERM)
        time.sleep(1.0)
        server.start()

    try:
        _run_through(env, restart)
    finally:
        env.close()
        server.kill()
