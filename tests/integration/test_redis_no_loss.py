"""test_no_loss.py's run — three consumers, one SIGTERMed, one SIGKILLed mid-run — on Redis.

The server is $SCOTER_TEST_REDIS_URL (default: the local one), each test in a fresh key prefix;
without a server the test is skipped, except in CI (CI=true), where it fails.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
import test_no_loss
from conftest import Env

REDIS_URL = os.environ.get("SCOTER_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


@pytest.fixture
def redis_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Env]:
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.ConnectionError:
        if os.environ.get("CI") == "true":
            raise
        pytest.skip(f"no Redis server at {REDIS_URL} (set SCOTER_TEST_REDIS_URL)")
    prefix = f"t{uuid.uuid4().hex}"
    env = Env(
        tmp_path, monkeypatch, f"{REDIS_URL}{'&' if '?' in REDIS_URL else '?'}prefix={prefix}"
    )
    yield env
    env.close()
    for key in client.scan_iter(f"{prefix}:*", count=1000):
        client.delete(key)
    client.close()


def test_no_task_lost_on_redis(redis_env: Env) -> None:
    test_no_loss.test_no_task_lost_when_consumers_are_terminated_and_killed(redis_env)
