"""A consumer started against a schema of another version refuses it, says why, and stays up:
once the schema is right (here: a stray newer version removed), it carries on by itself."""

from __future__ import annotations

import signal

import psycopg
import pytest
from conftest import Env

from scoter.states import State

pytestmark = pytest.mark.parametrize("env", ["postgres"], indirect=True)


def test_a_consumer_waits_for_the_right_schema_version(env: Env) -> None:
    import postgres_app

    result = env.module.sleepy(0.01)  # creates the schema at this scoter's version
    table = postgres_app.effects_table().replace(".effects", ".migrations")
    with psycopg.connect(postgres_app.server_url(), autocommit=True) as conn:
        conn.execute(f"INSERT INTO {table} (version, name) VALUES (9999, 'from the future')")
        worker = env.start("-w", "1")
        env.wait_for(lambda: "upgrade scoter" in worker.log(), 15, "the refusal in the log")
        assert worker.proc.poll() is None
        assert env.state(result.id) is State.QUEUED

        conn.execute(f"DELETE FROM {table} WHERE version = 9999")
    assert result.get(blocking=True, timeout=20) == worker.pid
    worker.send(signal.SIGTERM)
    assert worker.wait(timeout=15) == 0
